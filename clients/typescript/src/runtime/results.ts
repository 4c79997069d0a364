/**
 * Results as values: a typed `Problem` for every error response, and 204 / 304 as their own
 * cases instead of an `undefined` typed as the resource.
 */

/** A `code` the SDK's version does not know yet (a newer server). Compare with `isProblem`. */
export type UnknownCode = string & { readonly __unknownProblemCode: unique symbol };

export interface FieldError {
  field: string;
  message: string;
}

/**
 * An error response (RFC 9457 problem details), thrown by {@link unwrap}. `S` is the status and
 * `C` the codes, narrowed per operation by the version's `isProblem`.
 */
export class Problem<S extends number = number, C extends string = string> extends Error {
  override readonly name = "Problem";
  /** The HTTP status. */
  readonly status: S;
  /** Stable machine-readable code, e.g. `PRECONDITION_FAILED` (also the `X-Error-Code` header). */
  readonly code: C | UnknownCode;
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
  readonly body: Record<string, unknown>;
  readonly response: Response;

  constructor(response: Response, body: unknown) {
    const b: Record<string, unknown> = body !== null && typeof body === "object" ? (body as Record<string, unknown>) : {};
    const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
    const code = str(b.code) ?? response.headers.get("X-Error-Code") ?? `HTTP_${response.status}`;
    const detail = str(b.detail) || (typeof body === "string" && body) || response.statusText;
    super(`${response.status} ${code}: ${detail}`);
    this.status = response.status as S;
    this.code = code as C;
    this.type = str(b.type) ?? "about:blank";
    this.title = str(b.title) ?? response.statusText;
    this.detail = detail;
    this.instance = str(b.instance) ?? new URL(response.url || "http://invalid/").pathname;
    this.requestId = str(b.requestId) ?? response.headers.get("X-Request-Id") ?? "";
    this.errors = Array.isArray(b.errors) ? (b.errors as FieldError[]) : [];
    this.body = b;
    this.response = response;
  }
}

type Result = { data?: unknown; error?: unknown; response: Response };
/** The data type of the success branch of an openapi-fetch result. */
export type SuccessData<R> = R extends { data: infer D; error?: never } ? D : never;

function fail(result: Result): never {
  if (result.response.status === 304) {
    throw new TypeError("304 Not Modified: read conditional GETs with unwrapConditional()");
  }
  throw new Problem(result.response, result.error);
}

/**
 * The data of a successful call, or throws a {@link Problem}. An operation that declares 204
 * (DELETE of an absent resource) resolves to `undefined` then, and its type says so; use
 * {@link unwrapOptional} for `null` instead. A 304 throws: use {@link unwrapConditional}.
 */
export async function unwrap<R extends Result>(call: R | Promise<R>): Promise<SuccessData<R>> {
  const result = await call;
  if (!result.response.ok) fail(result);
  return result.data as SuccessData<R>;
}

/** The data of a successful call, `null` for 204 No Content; throws a {@link Problem}. */
export async function unwrapOptional<R extends Result>(call: R | Promise<R>): Promise<NonNullable<SuccessData<R>> | null> {
  const result = await call;
  if (!result.response.ok) fail(result);
  return result.response.status === 204 ? null : (result.data as NonNullable<SuccessData<R>>);
}

/** The result of a conditional GET (`If-None-Match`). */
export type Conditional<T> =
  | { status: "modified"; data: T; etag: string | undefined }
  | { status: "not-modified"; etag: string | undefined };

/** A conditional GET: the new representation, or `not-modified` (304); throws a {@link Problem}. */
export async function unwrapConditional<R extends Result>(call: R | Promise<R>): Promise<Conditional<NonNullable<SuccessData<R>>>> {
  const result = await call;
  const etag = etagOf(result.response);
  if (result.response.status === 304) return { status: "not-modified", etag };
  if (!result.response.ok) fail(result);
  return { status: "modified", data: result.data as NonNullable<SuccessData<R>>, etag };
}

/** The strong `ETag` of a response (quotes included), for `If-Match` / `If-None-Match`. */
export function etagOf(response: Response): string | undefined {
  return response.headers.get("ETag") ?? undefined;
}
