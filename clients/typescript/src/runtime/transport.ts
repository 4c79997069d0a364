/**
 * The transport under openapi-fetch: every request goes through `send`, which makes the
 * attempts. Per attempt: a fresh copy of the request, the session's bearer token, `X-Telemetry`,
 * a timeout. Per call: one `Idempotency-Key` for a POST (kept across its retries), retries with
 * backoff and `Retry-After` within the attempt and time bounds, one refresh-and-retry after a 401.
 */
import type { Session, TokenResponse } from "./auth.js";
import { DEFAULT_RETRY, nextDelay, parseRetryAfter, retryable, type RetryOptions, type RetryPolicy, type Safety } from "./retry.js";
import { telemetryHeader } from "./telemetry.js";

export interface TransportOptions {
  /** Per-attempt timeout in ms (default 10 s; 0 disables it). */
  timeoutMs?: number;
  /** Retry policy; `false` disables retries. */
  retry?: RetryOptions | false;
  /** Send `X-Telemetry` (default true). */
  telemetry?: boolean;
  /** A custom fetch (tests, proxies, instrumentation). */
  fetch?: (request: Request) => Promise<Response>;
}

/** What the transport knows about the API version it serves (generated `meta.ts`). */
export interface OperationMeta {
  idempotencyKeyOperations: readonly string[];
  authPaths: { login: string; refresh: string };
}

export const DEFAULT_TIMEOUT_MS = 10_000;

const CONNECT_ERRORS = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

/** Whether a fetch failure certainly happened before the request was sent. */
function notSent(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  return typeof cause?.code === "string" && CONNECT_ERRORS.has(cause.code);
}

function templateRegex(template: string): RegExp {
  const [method, path = ""] = template.split(" ");
  const pattern = path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
  return new RegExp(`^${method} ${pattern}$`);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });

export class Transport {
  private readonly policy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly telemetry: string | undefined;
  private readonly fetch: (request: Request) => Promise<Response>;
  private readonly keyed: RegExp[];

  constructor(
    private readonly baseUrl: string,
    private readonly session: Session,
    private readonly meta: OperationMeta,
    options: TransportOptions = {},
  ) {
    this.policy = options.retry === false ? { ...DEFAULT_RETRY, maxAttempts: 1 } : { ...DEFAULT_RETRY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.telemetry = options.telemetry === false ? undefined : telemetryHeader();
    this.fetch = options.fetch ?? ((request) => globalThis.fetch(request));
    this.keyed = meta.idempotencyKeyOperations.map(templateRegex);
  }

  /** The refresh request of the session, made through this transport. */
  sendRefresh(init: { body?: string; credentials?: RequestCredentials }): Promise<Response> {
    const headers = new Headers({ Accept: "application/json, application/problem+json" });
    if (init.body !== undefined) headers.set("Content-Type", "application/json");
    const url = this.baseUrl.replace(/\/$/, "") + this.meta.authPaths.refresh;
    const request = new Request(url, { method: "POST", headers, body: init.body, credentials: init.credentials });
    return this.send(request, { auth: false, adopt: false });
  }

  /** Sends `request` with retries; resolves to the final response, or rejects with the final error. */
  async send(original: Request, opts: { auth?: boolean; adopt?: boolean } = {}): Promise<Response> {
    const started = Date.now();
    const path = this.operationPath(new URL(original.url).pathname);
    const method = original.method.toUpperCase();
    const template = `${method} ${path}`;
    let safety: Safety = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"].includes(method) ? "idempotent" : "unsafe";
    const headers = new Headers(original.headers);
    if (method === "POST") {
      if (!headers.has("Idempotency-Key")) headers.set("Idempotency-Key", crypto.randomUUID());
      if (this.keyed.some((re) => re.test(template))) safety = "idempotent";
    }
    if (this.telemetry && !headers.has("X-Telemetry")) headers.set("X-Telemetry", this.telemetry);
    const useSession = opts.auth !== false && !headers.has("Authorization");
    // Keep the body so that every attempt can send it again.
    const body = original.body === null ? undefined : await original.arrayBuffer();
    let refreshed = false;

    for (let attempt = 1; ; attempt++) {
      const attemptHeaders = new Headers(headers);
      let token: string | undefined;
      if (useSession) {
        token = await this.session.accessToken();
        if (token) attemptHeaders.set("Authorization", `Bearer ${token}`);
      }
      const signals = [original.signal];
      // A retry also ends with the call's time budget: a call takes at most max(timeout, maxElapsedMs).
      const remaining = this.policy.maxElapsedMs - (Date.now() - started);
      const timeoutMs = attempt === 1 ? this.timeoutMs : Math.min(this.timeoutMs || Infinity, Math.max(1, remaining));
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) signals.push(AbortSignal.timeout(timeoutMs));
      const request = new Request(original.url, {
        method,
        headers: attemptHeaders,
        body,
        signal: AbortSignal.any(signals),
        credentials: original.credentials,
        redirect: original.redirect,
      });

      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await this.fetch(request);
      } catch (error) {
        if (original.signal.aborted) throw error; // the caller gave up: no retry
        failure = error;
      }

      // In cookie mode the refresh cookie may sign in a page that holds no access token yet.
      const mayRefresh = useSession && (token !== undefined || this.session.mode === "cookie");
      if (response?.status === 401 && mayRefresh && !refreshed && (await this.session.refresh(token))) {
        refreshed = true; // one refresh per call; this retry is not counted as an attempt
        attempt--;
        await response.body?.cancel();
        continue;
      }

      const outcome = response
        ? ({ kind: "response", status: response.status, code: response.headers.get("X-Error-Code") } as const)
        : ({ kind: "network", sent: !notSent(failure) } as const);
      const retryAfter = response ? parseRetryAfter(response.headers.get("Retry-After")) : undefined;
      const delay = retryable(outcome, safety) ? nextDelay(attempt, Date.now() - started, retryAfter, this.policy) : undefined;
      if (delay === undefined) {
        if (!response) throw failure;
        if (opts.adopt !== false && response.ok && method === "POST" && this.isAuthPath(path)) {
          this.session.adopt((await response.clone().json()) as TokenResponse);
        }
        return response;
      }
      await response?.body?.cancel();
      await sleep(delay, original.signal);
    }
  }

  /** The path as the spec writes it: without the path part of the base URL, if any. */
  private operationPath(pathname: string): string {
    const base = new URL(this.baseUrl).pathname.replace(/\/$/, "");
    return base && pathname.startsWith(base) ? pathname.slice(base.length) : pathname;
  }

  private isAuthPath(path: string): boolean {
    return path === this.meta.authPaths.login || path === this.meta.authPaths.refresh;
  }
}
