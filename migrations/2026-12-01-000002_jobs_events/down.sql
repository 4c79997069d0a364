DROP TABLE jobs;
DROP TABLE events;
