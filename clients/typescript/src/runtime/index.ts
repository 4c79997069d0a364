/** The version-independent runtime: transport, session, retries, pagination, results. */
export { Session, type AuthOptions, type TokenResponse, type Tokens } from "./auth.js";
export { createHeraldClient, type ClientOptions, type HeraldClient } from "./client.js";
export { FINISHED_STATUSES, waitForOperation, type OperationLike, type Poll, type WaitOptions } from "./operations.js";
export { items, pages, type Page, type PageFetcher } from "./paginate.js";
export {
  etagOf,
  Problem,
  unwrap,
  unwrapConditional,
  unwrapOptional,
  type Conditional,
  type FieldError,
  type SuccessData,
  type UnknownCode,
} from "./results.js";
export { backoffMs, DEFAULT_RETRY, nextDelay, parseRetryAfter, retryable, type RetryOptions, type RetryPolicy } from "./retry.js";
export { runtimeInfo, SDK_VERSION, telemetryHeader } from "./telemetry.js";
export { DEFAULT_TIMEOUT_MS, Transport, type OperationMeta, type TransportOptions } from "./transport.js";
