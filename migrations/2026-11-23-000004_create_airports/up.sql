-- Client-keyed resource: the IATA code from the path is the primary key, set once at creation.
CREATE TABLE airports (
    code              text        PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    runways           integer     NOT NULL CHECK (runways >= 1),
    takeoffs_per_hour integer     CHECK (takeoffs_per_hour >= 0),
    version           bigint      NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
