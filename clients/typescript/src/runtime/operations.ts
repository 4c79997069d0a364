/**
 * Long-running operations (exports): poll an Operation until it is finished, waiting as long as
 * the server's `Retry-After` says between polls, within an overall bound.
 */
import { parseRetryAfter } from "./retry.js";

/** The statuses after which an operation never changes again. */
export const FINISHED_STATUSES = ["succeeded", "failed", "canceled"] as const;

export interface OperationLike {
  status: string;
}

export interface WaitOptions {
  /** Give up (throw) after this long; default 10 minutes. */
  timeoutMs?: number;
  /** Wait between polls when the server sends no `Retry-After`; default 1 s. */
  defaultDelayMs?: number;
  signal?: AbortSignal;
}

/** One poll: what a typed `client.GET("/v2/operations/{id}", ...)` resolves to. */
export type Poll<T> = () => Promise<{ data?: T; error?: unknown; response: Response }>;

/**
 * Polls until the operation is `succeeded`, `failed` or `canceled`, and returns it. Throws the
 * problem body of an error response, or an Error on timeout or abort.
 */
export async function waitForOperation<T extends OperationLike>(poll: Poll<T>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
  for (;;) {
    options.signal?.throwIfAborted();
    const { data, error, response } = await poll();
    if (data === undefined) throw error ?? new Error(`polling the operation answered ${response.status}`);
    if ((FINISHED_STATUSES as readonly string[]).includes(data.status)) return data;
    const wait = parseRetryAfter(response.headers.get("retry-after")) ?? options.defaultDelayMs ?? 1000;
    if (Date.now() + wait > deadline) throw new Error(`the operation is still ${data.status} after the timeout`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, wait);
      options.signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(options.signal?.reason);
      }, { once: true });
    });
  }
}
