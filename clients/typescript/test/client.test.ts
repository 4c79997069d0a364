// Offline tests of the client against a scripted local server: what goes on the wire
// (headers, keys, tokens, attempts) and how answers come back. No Herald needed.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";

import { createClient, isProblem, paginate, Problem, unwrap, unwrapConditional, unwrapOptional, type ProblemCode } from "../src/index.js";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const POST_ID = "0193a1c2-7d4e-7c3a-9f1e-2b8c4d5e6f70";
const fast = { baseDelayMs: 10, maxDelayMs: 20 };

function problem(res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/problem+json", "X-Error-Code": code, "X-Request-Id": "req-1", ...headers });
  res.end(JSON.stringify({ type: "urn:herald:problem:x", title: "t", status, detail: "d", instance: "/", code, requestId: "req-1" }));
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

describe("client (offline)", () => {
  let server: Server;
  let url = "";
  let handler: Handler = (_req, _body, res) => res.end();
  const seen: { req: IncomingMessage; body: string }[] = [];

  before(async () => {
    server = createServer(async (req, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      seen.push({ req, body });
      handler(req, body, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    seen.length = 0;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it("aborts an attempt after timeoutMs, and retries a GET within the attempt bound", async () => {
    handler = () => {}; // never answers
    const client = createClient(url, { timeoutMs: 150, retry: { ...fast, maxAttempts: 2 } });
    const started = Date.now();
    await assert.rejects(client.GET("/v1/users/me"), (error: unknown) => {
      assert.ok(error instanceof DOMException, String(error));
      assert.equal(error.name, "TimeoutError");
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took >= 280 && took < 1_500, `two 150 ms attempts took ${took} ms`);
    assert.equal(seen.length, 2);
  });

  it("ends a call with its time budget: no attempt runs past maxElapsedMs", async () => {
    handler = () => {}; // never answers
    const client = createClient(url, { timeoutMs: 400, retry: { ...fast, maxAttempts: 10, maxElapsedMs: 500 } });
    const started = Date.now();
    await assert.rejects(client.GET("/v1/posts"), (e: unknown) => e instanceof DOMException && e.name === "TimeoutError");
    const took = Date.now() - started;
    assert.ok(took >= 450 && took < 700, `a 500 ms budget took ${took} ms`);
    assert.equal(seen.length, 2, "the second attempt got only what was left of the budget");
  });

  it("sends PATCH as merge-patch with the bearer token and telemetry, and throws a typed Problem", async () => {
    handler = (_req, _body, res) => problem(res, 412, "PRECONDITION_FAILED");
    const client = createClient(url, { token: "tok-1" });
    const call = client.PATCH("/v1/posts/{id}", {
      params: { path: { id: POST_ID }, header: { "If-Match": '"v1"' } },
      body: { title: "A new title" },
    });
    await assert.rejects(unwrap(call), (error: unknown) => {
      assert.ok(isProblem(error, 412));
      const code: ProblemCode | string = error.code;
      assert.equal(code, "PRECONDITION_FAILED");
      assert.equal(error.requestId, "req-1");
      return true;
    });
    assert.equal(seen.length, 1, "a 412 is not retried");
    const { req } = seen[0]!;
    assert.equal(req.headers["content-type"], "application/merge-patch+json");
    assert.equal(req.headers.authorization, "Bearer tok-1");
    assert.equal(req.headers["if-match"], '"v1"');
    assert.match(req.headers["x-telemetry"] as string, /^herald-sdk-typescript\/\S+ \(node\/[\d.]+; \w+\)$/);
    assert.equal(req.headers["idempotency-key"], undefined, "only POSTs carry a key");
  });

  it("telemetry can be turned off", async () => {
    handler = (_req, _body, res) => json(res, 200, { id: POST_ID });
    await createClient(url, { telemetry: false }).GET("/v1/users/me");
    assert.equal(seen[0]?.req.headers["x-telemetry"], undefined);
  });

  it("gives every POST an Idempotency-Key and keeps it across retries (503 with Retry-After, then 500)", async () => {
    let n = 0;
    handler = (_req, _body, res) => {
      n++;
      if (n === 1) return problem(res, 503, "SERVICE_UNAVAILABLE", { "Retry-After": "1" });
      if (n === 2) return problem(res, 500, "INTERNAL_ERROR");
      json(res, 201, { id: POST_ID });
    };
    const client = createClient(url, { token: "t", retry: fast });
    const started = Date.now();
    const { response } = await client.POST("/v1/posts", { body: { title: "Hello there", content: "Some content here." } });
    assert.equal(response.status, 201);
    assert.ok(Date.now() - started >= 1_000, "waited for Retry-After");
    const keys = seen.map((s) => s.req.headers["idempotency-key"]);
    assert.equal(keys.length, 3);
    assert.match(String(keys[0]), /^[0-9a-f-]{36}$/);
    assert.deepEqual(new Set(keys).size, 1, "one key for every attempt");
    assert.deepEqual(new Set(seen.map((s) => s.body)).size, 1, "the same body every time");

    seen.length = 0;
    n = 2;
    await client.POST("/v1/posts", {
      params: { header: { "Idempotency-Key": "mine" } },
      body: { title: "Hello there", content: "Some content here." },
    });
    assert.equal(seen[0]?.req.headers["idempotency-key"], "mine", "the caller's key wins");
  });

  it("retries a POST without key support on 503 only, never on 500", async () => {
    handler = (_req, _body, res) => problem(res, 500, "INTERNAL_ERROR");
    const client = createClient(url, { retry: fast });
    const register = { body: { email: "a@example.com", username: "abc", password: "password1" } };
    assert.equal((await client.POST("/v1/auth/register", register)).response.status, 500);
    assert.equal(seen.length, 1);
    let n = 0;
    handler = (_req, _body, res) => (n++ === 0 ? problem(res, 503, "SERVICE_UNAVAILABLE", { "Retry-After": "0" }) : json(res, 201, {}));
    assert.equal((await client.POST("/v1/auth/register", register)).response.status, 201);
    assert.equal(seen.length, 3);
  });

  it("gives up at maxAttempts and returns the last answer", async () => {
    handler = (_req, _body, res) => problem(res, 503, "SERVICE_UNAVAILABLE", { "Retry-After": "0" });
    const client = createClient(url, { retry: { ...fast, maxAttempts: 3 } });
    await assert.rejects(unwrap(client.GET("/v1/posts")), (e: unknown) => isProblem(e, 503));
    assert.equal(seen.length, 3);
  });

  it("types 304 and 204 as results", async () => {
    handler = (req, _body, res) => {
      if (req.method === "DELETE") return res.writeHead(204).end();
      res.writeHead(304, { ETag: '"7-abc"' }).end();
    };
    const client = createClient(url);
    const get = () => client.GET("/v1/posts/{id}", { params: { path: { id: POST_ID }, header: { "If-None-Match": '"7-abc"' } } });
    const cached = await unwrapConditional(get());
    assert.deepEqual(cached, { status: "not-modified", etag: '"7-abc"' });
    await assert.rejects(unwrap(get()), TypeError);
    const deleted = await unwrapOptional(client.DELETE("/v1/posts/{id}", { params: { path: { id: POST_ID } } }));
    assert.equal(deleted, null);
  });

  it("on a 401 refreshes once (body mode), retries with the new token and calls the hook", async () => {
    const changes: unknown[] = [];
    handler = (req, body, res) => {
      if (req.url === "/v1/auth/refresh") {
        assert.deepEqual(JSON.parse(body), { refreshToken: "r1" });
        assert.equal(req.headers.authorization, undefined);
        return json(res, 200, { accessToken: "fresh", tokenType: "Bearer", expiresIn: 900, refreshToken: "r2" });
      }
      if (req.headers.authorization === "Bearer fresh") return json(res, 200, { id: POST_ID });
      problem(res, 401, "UNAUTHENTICATED");
    };
    const client = createClient(url, {
      auth: { tokens: { accessToken: "stale", refreshToken: "r1" }, onTokens: (t) => changes.push(t) },
    });
    const me = await unwrap(client.GET("/v1/users/me"));
    assert.equal(me.id, POST_ID);
    assert.deepEqual(
      seen.map((s) => `${s.req.method} ${s.req.url} ${s.req.headers.authorization ?? "-"}`),
      ["GET /v1/users/me Bearer stale", "POST /v1/auth/refresh -", "GET /v1/users/me Bearer fresh"],
    );
    assert.equal(changes.length, 1);
    assert.equal(client.session.current?.refreshToken, "r2");
  });

  it("adopts the tokens of a login response", async () => {
    handler = (_req, _body, res) => json(res, 200, { accessToken: "a1", tokenType: "Bearer", expiresIn: 60, refreshToken: "r9" });
    const client = createClient(url);
    await client.POST("/v1/auth/login", { body: { email: "a@example.com", password: "secret" } });
    assert.equal(client.session.current?.accessToken, "a1");
    assert.equal(client.session.current?.refreshToken, "r9");
  });

  it("cookie mode refreshes with no body and no Content-Type, and keeps no refresh token", async () => {
    handler = (req, _body, res) => {
      if (req.url === "/v1/auth/refresh") return json(res, 200, { accessToken: "fresh", expiresIn: 900, refreshToken: "ignored" });
      if (req.headers.authorization === "Bearer fresh") return json(res, 200, {});
      problem(res, 401, "UNAUTHENTICATED");
    };
    const client = createClient(url, { auth: { mode: "cookie", tokens: { accessToken: "stale" } } });
    assert.equal((await client.GET("/v1/users/me")).response.status, 200);
    const refresh = seen.find((s) => s.req.url === "/v1/auth/refresh");
    assert.ok(refresh);
    assert.equal(refresh.body, "");
    assert.equal(refresh.req.headers["content-type"], undefined);
    assert.equal(refresh.req.headers["content-length"], "0");
    assert.equal(client.session.current?.refreshToken, undefined);
  });

  it("cookie mode signs a fresh page in from the cookie on its first 401", async () => {
    handler = (req, _body, res) => {
      if (req.url === "/v1/auth/refresh") return json(res, 200, { accessToken: "fresh", expiresIn: 900 });
      if (req.headers.authorization === "Bearer fresh") return json(res, 200, {});
      problem(res, 401, "UNAUTHENTICATED");
    };
    const client = createClient(url, { auth: { mode: "cookie" } });
    assert.equal((await client.GET("/v1/users/me")).response.status, 200);
    assert.deepEqual(
      seen.map((s) => `${s.req.method} ${s.req.url} ${s.req.headers.authorization ?? "-"}`),
      ["GET /v1/users/me -", "POST /v1/auth/refresh -", "GET /v1/users/me Bearer fresh"],
    );
    // Body mode without tokens does not try.
    seen.length = 0;
    assert.equal((await createClient(url).GET("/v1/users/me")).response.status, 401);
    assert.equal(seen.length, 1);
  });

  it("paginates by following nextLink, and throws a Problem for a failed page", async () => {
    handler = (req, _body, res) => {
      const q = new URL(req.url ?? "/", url).searchParams;
      const page = Number(q.get("cursor") ?? "0");
      if (q.get("status") === "draft") return problem(res, 400, "INVALID_PARAMETER");
      json(res, 200, {
        data: [{ id: `p${page}a` }, { id: `p${page}b` }],
        nextLink: page < 2 ? `/v1/posts?limit=2&cursor=${page + 1}` : null,
      });
    };
    const client = createClient(url);
    const ids: string[] = [];
    for await (const post of paginate(client, "/v1/posts", { limit: 2 })) ids.push(post.id);
    assert.deepEqual(ids, ["p0a", "p0b", "p1a", "p1b", "p2a", "p2b"]);
    assert.deepEqual(
      seen.map((s) => s.req.url),
      ["/v1/posts?limit=2", "/v1/posts?limit=2&cursor=1", "/v1/posts?limit=2&cursor=2"],
    );
    let pages = 0;
    for await (const page of paginate(client, "/v1/posts", { limit: 2 }).pages()) pages += page.data.length > 0 ? 1 : 0;
    assert.equal(pages, 3);
    await assert.rejects(async () => {
      for await (const _ of paginate(client, "/v1/posts", { status: "draft" })) assert.fail("no items");
    }, Problem);
  });
});
