// Offline tests of the hand-written layer (no server needed).
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";

import { createClient, isProblem, Problem, unwrap } from "../src/index.js";

describe("client layer (offline)", () => {
  let server: Server;
  let url = "";
  const seen: IncomingMessage[] = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req);
      if (req.url?.startsWith("/v1/users/me")) {
        // Never answer: the client's timeout must fire.
        return;
      }
      req.resume();
      res.writeHead(412, {
        "Content-Type": "application/problem+json",
        "X-Error-Code": "PRECONDITION_FAILED",
        "X-Request-Id": "req-1",
      });
      res.end(
        JSON.stringify({
          type: "urn:herald:problem:precondition-failed",
          title: "Precondition failed",
          status: 412,
          detail: "stale",
          instance: req.url,
          code: "PRECONDITION_FAILED",
          requestId: "req-1",
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it("aborts a request after timeoutMs", async () => {
    const client = createClient(url, { timeoutMs: 200 });
    const started = Date.now();
    await assert.rejects(client.GET("/v1/users/me"), (error: unknown) => {
      assert.ok(error instanceof DOMException, String(error));
      assert.equal(error.name, "TimeoutError");
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
  });

  it("sends PATCH as merge-patch with the bearer token, and throws a typed Problem", async () => {
    const client = createClient(url, { token: "tok-1" });
    const call = client.PATCH("/v1/posts/{id}", {
      params: { path: { id: "0193a1c2-7d4e-7c3a-9f1e-2b8c4d5e6f70" }, header: { "If-Match": '"v1"' } },
      body: { title: null as unknown as string },
    });
    await assert.rejects(unwrap(call), (error: unknown) => {
      assert.ok(isProblem(error, 412));
      assert.ok(error instanceof Problem);
      assert.equal(error.code, "PRECONDITION_FAILED");
      assert.equal(error.requestId, "req-1");
      return true;
    });
    const req = seen.at(-1);
    assert.ok(req);
    assert.equal(req.method, "PATCH");
    assert.equal(req.headers["content-type"], "application/merge-patch+json");
    assert.equal(req.headers.authorization, "Bearer tok-1");
    assert.equal(req.headers["if-match"], '"v1"');
  });
});
