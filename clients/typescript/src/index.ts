/**
 * Herald TypeScript SDK.
 *
 * The request/response types in `./generated/schema.ts` are generated from
 * `openapi/openapi.json` by openapi-typescript (`npm run generate`); the HTTP client is
 * openapi-fetch. This file is the small hand-written layer on top: a client factory with a
 * bearer token, a default timeout and the merge-patch content type, and a typed `Problem`
 * error for `application/problem+json` responses.
 */
import createFetchClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, operations, paths } from "./generated/schema.js";

export type { components, operations, paths } from "./generated/schema.js";

/** Every schema of the API, e.g. `Schemas["Post"]`. */
export type Schemas = components["schemas"];
export type Airport = Schemas["Airport"];
export type Post = Schemas["Post"];
export type User = Schemas["User"];
export type TokenResponse = Schemas["TokenResponse"];
export type FieldError = Schemas["FieldError"];
/** The problem-details body (RFC 9457) of every error response. */
export type ProblemBody = Schemas["Problem"];

/** The default per-request timeout: the API guide recommends that clients always set one. */
export const DEFAULT_TIMEOUT_MS = 10_000;

export type HttpMethod = "get" | "put" | "post" | "delete" | "patch";
type Digit = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9";
type ErrorCode = `${"4" | "5"}${Digit}${Digit}`;

/** The error statuses (4xx/5xx) that the spec declares for one operation. */
export type ErrorStatus<P extends keyof paths, M extends HttpMethod> =
  NonNullable<paths[P][M]> extends { responses: infer R }
    ? { [K in keyof R]: K extends number ? (`${K}` extends ErrorCode ? K : never) : never }[keyof R]
    : never;

/** The error statuses that an operation (by operationId) declares. */
export type OperationErrorStatus<O extends keyof operations> = {
  [K in keyof operations[O]["responses"]]: K extends number
    ? `${K}` extends ErrorCode
      ? K
      : never
    : never;
}[keyof operations[O]["responses"]];

/**
 * An error response from the API, thrown by {@link unwrap}. `status` is typed by the operation
 * when you narrow with {@link isProblem}, e.g. `Problem<ErrorStatus<"/v1/posts/{id}", "patch">>`.
 */
export class Problem<S extends number = number> extends Error {
  override readonly name = "Problem";
  /** The HTTP status. */
  readonly status: S;
  /** Stable machine-readable code, e.g. `PRECONDITION_FAILED` (also the `X-Error-Code` header). */
  readonly code: string;
  /** `urn:herald:problem:<code>`. */
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** The request path. */
  readonly instance: string;
  /** Quote this when reporting a problem (also the `X-Request-Id` header). */
  readonly requestId: string;
  /** For validation failures: every invalid field (camelCase property names). */
  readonly errors: FieldError[];
  /** The parsed body, as sent. */
  readonly body: Partial<ProblemBody> & Record<string, unknown>;
  readonly response: Response;

  constructor(response: Response, body: unknown) {
    const b: Record<string, unknown> =
      body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
    const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
    const code = str(b.code) ?? response.headers.get("X-Error-Code") ?? `HTTP_${response.status}`;
    const detail = str(b.detail) ?? (typeof body === "string" ? body : response.statusText);
    super(`${response.status} ${code}: ${detail}`);
    this.status = response.status as S;
    this.code = code;
    this.type = str(b.type) ?? "about:blank";
    this.title = str(b.title) ?? response.statusText;
    this.detail = detail;
    this.instance = str(b.instance) ?? new URL(response.url || "http://invalid/").pathname;
    this.requestId =
      str(b.requestId) ?? str(b.request_id) ?? response.headers.get("X-Request-Id") ?? "";
    this.errors = Array.isArray(b.errors) ? (b.errors as FieldError[]) : [];
    this.body = b as Problem["body"];
    this.response = response;
  }
}

/** Narrows an unknown error to a {@link Problem}, optionally of one status. */
export function isProblem<S extends number = number>(error: unknown, status?: S): error is Problem<S> {
  return error instanceof Problem && (status === undefined || error.status === status);
}

type Result = { data?: unknown; error?: unknown; response: Response };
/** The data type of the success branch of an openapi-fetch result. */
export type SuccessData<R> = R extends { data: infer D; error?: never } ? D : never;

/**
 * Returns the data of a successful call, or throws a {@link Problem}.
 * Success without a body (204) gives `undefined`; so does 304 Not Modified.
 */
export async function unwrap<R extends Result>(call: R | Promise<R>): Promise<SuccessData<R>> {
  const result = await call;
  if (result.response.ok || result.response.status === 304) {
    return result.data as SuccessData<R>;
  }
  throw new Problem(result.response, result.error);
}

/** The strong `ETag` of a response (quotes included), for `If-Match` / `If-None-Match`. */
export function etagOf(response: Response): string | undefined {
  return response.headers.get("ETag") ?? undefined;
}

export interface ClientOptions {
  /** Bearer access token, or a function returning the current one (called per request). */
  token?: string | (() => string | undefined | Promise<string | undefined>);
  /** Default per-request timeout in milliseconds (default 10 s; 0 disables it). */
  timeoutMs?: number;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** A custom fetch (tests, proxies). */
  fetch?: (request: Request) => Promise<Response>;
}

export type HeraldClient = Client<paths> & {
  /** Replace (or clear) the bearer token used from now on. */
  setToken(token: string | undefined): void;
};

/**
 * Creates a client for the Herald API at `baseUrl` (e.g. `http://127.0.0.1:3000`).
 *
 * - `Authorization: Bearer` from `token` unless a call sets its own header.
 * - PATCH bodies go out as `application/merge-patch+json` (the API accepts nothing else).
 * - Every request is aborted after `timeoutMs` (a `TimeoutError` `DOMException`); pass your
 *   own `signal` to a call to cancel it earlier.
 */
export function createClient(baseUrl: string, options: ClientOptions = {}): HeraldClient {
  let token = options.token;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const baseFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request));

  const client = createFetchClient<paths>({
    baseUrl,
    headers: { Accept: "application/json, application/problem+json", ...options.headers },
    fetch: (request: Request) => {
      if (timeoutMs <= 0) return baseFetch(request);
      const signal = AbortSignal.any([request.signal, AbortSignal.timeout(timeoutMs)]);
      return baseFetch(new Request(request, { signal }));
    },
  });

  const middleware: Middleware = {
    async onRequest({ request }) {
      if (token !== undefined && !request.headers.has("Authorization")) {
        const value = typeof token === "function" ? await token() : token;
        if (value) request.headers.set("Authorization", `Bearer ${value}`);
      }
      if (
        request.method === "PATCH" &&
        request.headers.get("Content-Type")?.split(";")[0]?.trim() === "application/json"
      ) {
        request.headers.set("Content-Type", "application/merge-patch+json");
      }
      return request;
    },
  };
  client.use(middleware);

  return Object.assign(client, {
    setToken(value: string | undefined) {
      token = value;
    },
  });
}

export default createClient;
