// Unit tests of the runtime's pure parts: backoff, Retry-After, what is retried, the bounds,
// single-flight refresh, telemetry. No server.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import {
  backoffMs,
  DEFAULT_RETRY,
  nextDelay,
  parseRetryAfter,
  retryable,
  runtimeInfo,
  SDK_VERSION,
  Session,
  telemetryHeader,
  waitForOperation,
} from "../src/runtime/index.js";

describe("backoff", () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1_000 };

  it("doubles per retry, with equal jitter in [d/2, d], capped", () => {
    for (const [retry, ceiling] of [[1, 100], [2, 200], [3, 400], [4, 800], [5, 1000], [9, 1000]] as const) {
      assert.equal(backoffMs(retry, policy, () => 0), ceiling / 2, `retry ${retry}, lowest`);
      assert.equal(backoffMs(retry, policy, () => 0.999999), ceiling * 0.9999995, `retry ${retry}, highest`);
      for (let i = 0; i < 200; i++) {
        const d = backoffMs(retry, policy);
        assert.ok(d >= ceiling / 2 && d <= ceiling, `retry ${retry}: ${d}`);
      }
    }
  });

  it("spreads clients out: random delays differ", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffMs(3, policy)));
    assert.ok(delays.size > 40);
  });
});

describe("Retry-After", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("reads delay-seconds", () => {
    assert.equal(parseRetryAfter("0", now), 0);
    assert.equal(parseRetryAfter("5", now), 5_000);
    assert.equal(parseRetryAfter(" 120 ", now), 120_000);
  });

  it("reads an HTTP-date relative to now; a past date is 0", () => {
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:07 GMT", now), 7_000);
    assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:59:00 GMT", now), 0);
  });

  it("ignores what is neither", () => {
    for (const v of [null, undefined, "", "soon", "-1", "1.5", "2026-01-01T00:00:07Z"]) {
      assert.equal(parseRetryAfter(v, now), undefined, String(v));
    }
  });
});

describe("what is retried", () => {
  it("network failures: always when nothing was sent, else only idempotent requests", () => {
    assert.equal(retryable({ kind: "network", sent: false }, "unsafe"), true);
    assert.equal(retryable({ kind: "network", sent: true }, "unsafe"), false);
    assert.equal(retryable({ kind: "network", sent: true }, "idempotent"), true);
  });

  it("429 and 503 always; other 5xx only when idempotent; 4xx never (but a key in progress)", () => {
    for (const safety of ["unsafe", "idempotent"] as const) {
      assert.equal(retryable({ kind: "response", status: 429 }, safety), true);
      assert.equal(retryable({ kind: "response", status: 503 }, safety), true);
      assert.equal(retryable({ kind: "response", status: 500 }, safety), safety === "idempotent");
      assert.equal(retryable({ kind: "response", status: 502 }, safety), safety === "idempotent");
      assert.equal(retryable({ kind: "response", status: 501 }, safety), false);
      for (const status of [200, 201, 204, 304, 400, 401, 404, 409, 412, 422]) {
        assert.equal(retryable({ kind: "response", status }, safety), false, `${status}`);
      }
    }
    assert.equal(retryable({ kind: "response", status: 409, code: "IDEMPOTENCY_KEY_IN_PROGRESS" }, "idempotent"), true);
  });

  it("stops at maxAttempts and before the time budget runs out", () => {
    const policy = { ...DEFAULT_RETRY, maxAttempts: 3, maxElapsedMs: 1_000, baseDelayMs: 100, maxDelayMs: 100 };
    assert.ok(nextDelay(1, 0, undefined, policy) !== undefined);
    assert.ok(nextDelay(2, 0, undefined, policy) !== undefined);
    assert.equal(nextDelay(3, 0, undefined, policy), undefined, "attempts used up");
    assert.equal(nextDelay(1, 950, undefined, policy, () => 1), undefined, "950 + 100 > 1000");
    assert.equal(nextDelay(1, 0, 2_000, policy), undefined, "Retry-After past the budget");
    assert.equal(nextDelay(1, 0, 300, policy), 300, "Retry-After honoured as given");
  });
});

describe("session", () => {
  it("20 concurrent refreshes of the same stale token make one request", async () => {
    let requests = 0;
    const changes: unknown[] = [];
    const session = new Session({ tokens: { accessToken: "old", refreshToken: "r1" }, onTokens: (t) => changes.push(t) });
    session.sender = async (init) => {
      requests++;
      assert.deepEqual(JSON.parse(init.body ?? "null"), { refreshToken: "r1" });
      await new Promise((r) => setTimeout(r, 20));
      return Response.json({ accessToken: "new", refreshToken: "r2", expiresIn: 900 });
    };
    const results = await Promise.all(Array.from({ length: 20 }, () => session.refresh("old")));
    assert.deepEqual(new Set(results), new Set([true]));
    assert.equal(requests, 1);
    assert.equal(changes.length, 1);
    assert.equal(session.current?.refreshToken, "r2");
    // A caller that saw the old token after the refresh does not refresh again.
    assert.equal(await session.refresh("old"), true);
    assert.equal(requests, 1);
  });

  it("refreshes before expiry, once, however many callers ask for the token", async () => {
    let requests = 0;
    const now = Date.now();
    const session = new Session({ tokens: { accessToken: "old", refreshToken: "r1", expiresAt: now + 10_000 }, refreshBeforeMs: 30_000 });
    session.sender = async () => {
      requests++;
      return Response.json({ accessToken: "new", refreshToken: "r2", expiresIn: 900 });
    };
    const tokens = await Promise.all(Array.from({ length: 20 }, () => session.accessToken()));
    assert.deepEqual(new Set(tokens), new Set(["new"]));
    assert.equal(requests, 1);
    assert.ok((session.current?.expiresAt ?? 0) >= now + 899_000);
  });

  it("cookie mode sends no body; a refused refresh signs out", async () => {
    const changes: unknown[] = [];
    const session = new Session({ mode: "cookie", tokens: { accessToken: "old" }, onTokens: (t) => changes.push(t) });
    session.sender = async (init) => {
      assert.equal(init.body, undefined);
      assert.equal(init.credentials, "include");
      return new Response(JSON.stringify({ code: "INVALID_REFRESH_TOKEN" }), { status: 401 });
    };
    assert.equal(await session.refresh("old"), false);
    assert.equal(session.current, null);
    assert.deepEqual(changes, [null]);
  });

  it("a body-mode session without a refresh token does not try", async () => {
    const session = new Session({ tokens: { accessToken: "old" } });
    session.sender = async () => assert.fail("no refresh without a refresh token");
    assert.equal(await session.refresh("old"), false);
  });
});

describe("telemetry", () => {
  it("names the SDK, its version, the runtime and the OS", () => {
    assert.match(telemetryHeader(), /^herald-sdk-typescript\/\d+\.\d+\.\d+ \(node\/\d+\.\d+\.\d+; (linux|darwin|win32)\)$/);
    assert.deepEqual(runtimeInfo({ navigator: { platform: "MacIntel" } }), ["browser", "macintel"]);
    assert.deepEqual(runtimeInfo({ Deno: { version: { deno: "2.1.0" }, build: { os: "linux" } } }), ["deno/2.1.0", "linux"]);
  });

  it("reports the version package.json publishes", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    assert.equal(SDK_VERSION, pkg.version);
  });
});

describe("waitForOperation", () => {
  const answer = (status: string, retryAfter?: string) => ({
    data: { status },
    response: new Response(null, { status: 200, headers: retryAfter ? { "retry-after": retryAfter } : {} }),
  });

  it("polls until the operation is finished, as often as Retry-After says", async () => {
    const seen = ["notStarted", "running", "succeeded"];
    let polls = 0;
    const started = Date.now();
    const done = await waitForOperation(async () => answer(seen[polls++] ?? "succeeded", "0"));
    assert.equal(done.status, "succeeded");
    assert.equal(polls, 3);
    assert.ok(Date.now() - started < 1_000, "Retry-After: 0 means no wait");
  });

  it("gives up at the timeout and surfaces an error response", async () => {
    await assert.rejects(waitForOperation(async () => answer("running", "5"), { timeoutMs: 100 }), /still running/);
    const problem = { code: "OPERATION_NOT_FOUND" };
    await assert.rejects(
      waitForOperation(async () => ({ error: problem, response: new Response(null, { status: 404 }) })),
      (e) => e === problem,
    );
  });
});
