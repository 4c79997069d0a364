/**
 * When to retry and how long to wait: jittered exponential backoff, `Retry-After`, and the
 * bounds on attempts and on total time. Pure functions, unit-tested in test/runtime.test.ts.
 */

export interface RetryOptions {
  /** Attempts in all, the first included (default 4; 1 disables retries). */
  maxAttempts?: number;
  /** No retry starts after this much time since the call began (default 30 s). */
  maxElapsedMs?: number;
  /** The first backoff (default 250 ms); each retry doubles it, up to `maxDelayMs`. */
  baseDelayMs?: number;
  /** The longest backoff (default 5 s). */
  maxDelayMs?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  maxElapsedMs: 30_000,
  baseDelayMs: 250,
  maxDelayMs: 5_000,
};

/**
 * The wait before retry number `retry` (1 for the first retry): "equal jitter", uniformly in
 * `[d/2, d]` where `d = min(maxDelayMs, baseDelayMs * 2^(retry-1))`, so clients that failed
 * together do not come back together, and no retry is immediate.
 */
export function backoffMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * `Retry-After` in milliseconds: delay-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`, relative to `now`). `undefined` when absent or malformed;
 * a date in the past is 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How safe a request is to send again.
 * - `idempotent`: GET, HEAD, OPTIONS, PUT, DELETE, and POSTs to operations that honour the
 *   `Idempotency-Key` the SDK sent: any failure may be retried.
 * - `unsafe`: other POSTs and PATCH: retried only when the server surely did not act on them
 *   (the connection was never made, 429, 503). A refresh is `unsafe`: sent twice it would be
 *   taken for a stolen token.
 */
export type Safety = "idempotent" | "unsafe";

export type Outcome =
  | { kind: "response"; status: number; code?: string | null }
  | { kind: "network"; sent: boolean };

/** Whether an attempt that ended with `outcome` may be retried. */
export function retryable(outcome: Outcome, safety: Safety): boolean {
  if (outcome.kind === "network") return !outcome.sent || safety === "idempotent";
  const { status, code } = outcome;
  if (status === 429 || status === 503) return true;
  if (status === 409 && code === "IDEMPOTENCY_KEY_IN_PROGRESS") return safety === "idempotent";
  return safety === "idempotent" && status >= 500 && status !== 501 && status !== 505;
}

/**
 * The wait before the next attempt, or `undefined` to stop: the attempts are used up, or the
 * wait (the server's `Retry-After` when it gave one, else the backoff) would end past the
 * time budget.
 */
export function nextDelay(
  attempt: number,
  elapsedMs: number,
  retryAfterMs: number | undefined,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const delay = retryAfterMs ?? backoffMs(attempt, policy, random);
  return elapsedMs + delay >= policy.maxElapsedMs ? undefined : delay;
}
