/**
 * Herald API v2. Types are generated from the v2 document (`src/generated/v2/`); everything
 * else is the version-independent runtime (`src/runtime/`), typed here with v2's paths and
 * problem codes.
 */
import { createHeraldClient, type ClientOptions, type HeraldClient as RuntimeClient } from "../runtime/client.js";
import { items, pages, type Page } from "../runtime/paginate.js";
import { Problem } from "../runtime/results.js";
import { authPaths, idempotencyKeyOperations, type ListPath, type OperationProblemCodes, type ProblemCode } from "../generated/v2/meta.js";
import type { components, operations, paths } from "../generated/v2/schema.js";

export type { components, operations, paths } from "../generated/v2/schema.js";
export { apiVersion, listPaths, problemCodes, type ListPath, type OperationProblemCodes, type ProblemCode } from "../generated/v2/meta.js";
export * from "../runtime/index.js";

/** Every schema of the API, e.g. `Schemas["Post"]`. */
export type Schemas = components["schemas"];
export type Airport = Schemas["Airport"];
export type Post = Schemas["Post"];
export type User = Schemas["User"];
export type TokenResponse = Schemas["TokenResponse"];
/** The problem-details body (RFC 9457) of every error response. */
export type ProblemBody = Schemas["Problem"];

export type HttpMethod = "get" | "put" | "post" | "delete" | "patch";
type Digit = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9";
type ErrorCodeStatus = `${"4" | "5"}${Digit}${Digit}`;

/** The error statuses (4xx/5xx) that the spec declares for one operation. */
export type ErrorStatus<P extends keyof paths, M extends HttpMethod> =
  NonNullable<paths[P][M]> extends { responses: infer R }
    ? { [K in keyof R]: K extends number ? (`${K}` extends ErrorCodeStatus ? K : never) : never }[keyof R]
    : never;

/** The error statuses that an operation (by operationId) declares. */
export type OperationErrorStatus<O extends keyof operations> = {
  [K in keyof operations[O]["responses"]]: K extends number ? (`${K}` extends ErrorCodeStatus ? K : never) : never;
}[keyof operations[O]["responses"]];

/** The problem codes an operation declares, e.g. `ProblemCodeOf<"/v2/posts", "post">`. */
export type ProblemCodeOf<P extends keyof OperationProblemCodes, M extends keyof OperationProblemCodes[P]> =
  OperationProblemCodes[P][M][keyof OperationProblemCodes[P][M]];

/** A problem of one operation: its declared statuses and codes. */
export type ProblemOf<P extends keyof OperationProblemCodes & keyof paths, M extends keyof OperationProblemCodes[P] & HttpMethod> = Problem<
  ErrorStatus<P, M>,
  ProblemCodeOf<P, M> & string
>;

/** Narrows an unknown error to a v2 {@link Problem}, optionally of one status. */
export function isProblem<S extends number = number>(error: unknown, status?: S): error is Problem<S, ProblemCode> {
  return error instanceof Problem && (status === undefined || error.status === status);
}

export type HeraldClient = RuntimeClient<paths>;
export type { ClientOptions };

/**
 * A v2 client for the API at `baseUrl` (e.g. `https://api.example.com`): typed calls
 * (`client.GET("/v2/posts/{id}", ...)`), with retries, idempotency keys, token refresh,
 * timeouts and telemetry.
 */
export function createClient(baseUrl: string, options: ClientOptions = {}): HeraldClient {
  return createHeraldClient<paths>(baseUrl, options, { idempotencyKeyOperations, authPaths });
}
export default createClient;

type ListResponse<P extends ListPath> = paths[P]["get"]["responses"][200]["content"]["application/json"];
/** The items of a list, e.g. `ListItem<"/v2/posts">` is `Post`. */
export type ListItem<P extends ListPath> = ListResponse<P>["data"][number];
/** The query parameters of a list. */
export type ListQuery<P extends ListPath> = NonNullable<paths[P]["get"]["parameters"]["query"]>;

/** What `paginate` returns: iterate it for the items, or `.pages()` for the pages. */
export interface Paginated<T> extends AsyncIterable<T> {
  pages(): AsyncIterable<Page<T>>;
}

/**
 * Every item of a list, following `nextLink` to the end:
 * `for await (const post of paginate(client, "/v2/posts", { limit: 100 })) ...`.
 * A page that fails (after the client's retries) throws a {@link Problem}.
 */
export function paginate<P extends ListPath>(
  client: HeraldClient,
  path: P,
  query?: ListQuery<P>,
  init: { signal?: AbortSignal } = {},
): Paginated<ListItem<P>> {
  const fetchPage = async (next: Record<string, string> | undefined): Promise<Page<ListItem<P>>> => {
    // The generic path defeats openapi-fetch's overloads; the types above say what comes back.
    const get = client.GET as unknown as (path: string, init: object) => Promise<{ data?: unknown; error?: unknown; response: Response }>;
    const result = await get(path, { params: { query: next ?? query }, signal: init.signal });
    if (!result.response.ok) throw new Problem(result.response, result.error);
    return result.data as Page<ListItem<P>>;
  };
  return {
    [Symbol.asyncIterator]: () => items(fetchPage),
    pages: () => pages(fetchPage),
  };
}
