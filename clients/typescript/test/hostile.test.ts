// The SDK against a live Herald ($HERALD_URL) through a fault-injecting proxy started here
// (test/support/proxy.ts): dropped connections before and after Herald saw the request, 503s
// with Retry-After, delays. What the proxy and Herald saw is counted, not assumed.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { createClient, paginate, unwrap, type HeraldClient, type Tokens } from "../src/index.js";
import { FaultProxy } from "./support/proxy.js";

const BASE_URL = process.env.HERALD_URL;
if (!BASE_URL) throw new Error("HERALD_URL is not set: start Herald (e.g. scripts/contract) and export HERALD_URL");
const baseUrl: string = BASE_URL;

const run = randomBytes(5).toString("hex");
const fast = { baseDelayMs: 50, maxDelayMs: 200 };
const POSTS = /^\/v1\/posts$/;
const REFRESH = /^\/v1\/auth\/refresh$/;
const ME = /^\/v1\/users\/me$/;

/** Registers and logs in a fresh user, straight to Herald (no proxy). */
async function freshUser(tag: string): Promise<{ id: string; tokens: Tokens; direct: HeraldClient }> {
  const direct = createClient(baseUrl);
  const name = `ts_${tag}_${run}`;
  const password = `pw-${run}-secret`;
  const user = await unwrap(direct.POST("/v1/auth/register", { body: { email: `${name}@example.com`, username: name, password } }));
  await unwrap(direct.POST("/v1/auth/login", { body: { email: `${name}@example.com`, password } }));
  const tokens = direct.session.current;
  assert.ok(tokens?.refreshToken);
  return { id: user.id, tokens, direct };
}

/** Every post of `authorId` (drafts included), read straight from Herald. */
async function postsOf(client: HeraldClient, authorId: string): Promise<{ id: string; title: string }[]> {
  const all = [];
  for await (const post of paginate(client, "/v1/posts", { authorId, status: "all", limit: 100 })) all.push(post);
  return all;
}

describe("through a hostile network (live, fault proxy)", () => {
  let proxy: FaultProxy;

  before(async () => {
    proxy = await FaultProxy.start(baseUrl);
  });
  after(async () => {
    await proxy.close();
  });

  it("a POST whose answer was lost is retried with its key and creates exactly one post", async () => {
    const { id, tokens, direct } = await freshUser("once");
    const client = createClient(proxy.url, { auth: { tokens }, retry: fast });
    proxy.reset();
    // Attempt 1 reaches Herald but its answer is dropped; attempt 2 never reaches Herald;
    // attempt 3 is answered 503 by the proxy; attempt 4 gets Herald's stored answer again.
    proxy.inject("POST", POSTS, { kind: "drop-after" }, { kind: "drop-before" }, { kind: "unavailable", retryAfterSeconds: 1 });
    const started = Date.now();
    const title = `Exactly once ${run}`;
    const { data, response } = await client.POST("/v1/posts", { body: { title, content: "Created through a lossy network." } });
    const took = Date.now() - started;
    assert.equal(response.status, 201);
    assert.equal(response.headers.get("Idempotent-Replayed"), "true", "the answer is the stored one");
    const attempts = proxy.seen.filter((s) => s.method === "POST" && POSTS.test(s.path));
    assert.deepEqual(
      attempts.map((a) => a.fault),
      ["drop-after", "drop-before", "unavailable", "none"],
    );
    assert.equal(new Set(attempts.map((a) => a.headers["idempotency-key"])).size, 1, "one key for all four attempts");
    assert.ok(took >= 1_000, `Retry-After: 1 honoured (took ${took} ms)`);
    const mine = (await postsOf(direct, id)).filter((p) => p.title === title);
    assert.equal(mine.length, 1, "Herald holds exactly one post");
    assert.equal(mine[0]?.id, data?.id);
    console.log(`  measured: ${attempts.length} attempts, ${mine.length} post created, ${took} ms`);
  });

  it("a POST without key support is not sent again once it may have reached Herald", async () => {
    const client = createClient(proxy.url, { retry: fast });
    proxy.reset();
    proxy.inject("POST", /^\/v1\/auth\/login$/, { kind: "drop-after" });
    await assert.rejects(client.POST("/v1/auth/login", { body: { email: "user1@example.com", password: "user123" } }), TypeError);
    assert.equal(proxy.count("POST", /^\/v1\/auth\/login$/), 1);
  });

  it("a paginated read of 250 posts gets each exactly once, through drops, 503s and delays", async () => {
    const { id, tokens, direct } = await freshUser("pages");
    const created = new Set<string>();
    for (let batch = 0; batch < 25; batch++) {
      const posts = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          unwrap(direct.POST("/v1/posts", { body: { title: `Page post ${batch * 10 + i}`, content: "Paginated through faults.", published: true } })),
        ),
      );
      for (const p of posts) created.add(p.id);
    }
    assert.equal(created.size, 250);
    const client = createClient(proxy.url, { auth: { tokens }, retry: fast });
    proxy.reset();
    proxy.inject(
      "GET",
      POSTS,
      { kind: "delay", ms: 200 },
      { kind: "drop-before" },
      { kind: "unavailable", retryAfterSeconds: 1 },
      { kind: "drop-after" },
    );
    const seen: string[] = [];
    for await (const post of paginate(client, "/v1/posts", { authorId: id, status: "all", limit: 30 })) seen.push(post.id);
    assert.equal(seen.length, 250, "250 items");
    assert.equal(new Set(seen).size, 250, "no item twice");
    assert.deepEqual(new Set(seen), created, "exactly the posts created");
    const requests = proxy.count("GET", POSTS);
    assert.equal(requests, 9 + 3, "9 pages, 3 of them retried once");
    console.log(`  measured: ${seen.length} posts, ${new Set(seen).size} distinct, ${requests} page requests for 9 pages`);
  });

  it("20 concurrent calls with a rejected access token cause exactly one refresh", async () => {
    const { tokens } = await freshUser("flight");
    const refreshes: (Tokens | null)[] = [];
    const client = createClient(proxy.url, {
      auth: { tokens: { ...tokens, accessToken: "expired-or-revoked" }, onTokens: (t) => refreshes.push(t) },
      retry: fast,
    });
    proxy.reset();
    proxy.inject("POST", REFRESH, { kind: "delay", ms: 100 }); // let every caller pile up on it
    const answers = await Promise.all(Array.from({ length: 20 }, () => client.GET("/v1/users/me")));
    assert.deepEqual(new Set(answers.map((a) => a.response.status)), new Set([200]), "every call succeeded");
    assert.equal(proxy.count("GET", ME), 40, "each call: one 401, one retry");
    assert.equal(proxy.count("POST", REFRESH), 1, "one refresh at the proxy");
    assert.equal(refreshes.length, 1, "one token change");
    console.log(`  measured (401): ${proxy.count("POST", REFRESH)} refresh for 20 calls`);
  });

  it("20 concurrent calls with an expired access token refresh once, before sending", async () => {
    const { tokens } = await freshUser("expiry");
    const client = createClient(proxy.url, { auth: { tokens: { ...tokens, expiresAt: Date.now() - 1_000 } }, retry: fast });
    proxy.reset();
    const answers = await Promise.all(Array.from({ length: 20 }, () => client.GET("/v1/users/me")));
    assert.deepEqual(new Set(answers.map((a) => a.response.status)), new Set([200]));
    assert.equal(proxy.count("POST", REFRESH), 1);
    assert.equal(proxy.count("GET", ME), 20, "no call was sent with the expired token");
    assert.ok((client.session.current?.expiresAt ?? 0) > Date.now());
    console.log(`  measured (expiry): ${proxy.count("POST", REFRESH)} refresh for 20 calls`);
  });

  it("a timeout fires within its bound, attempts included", async () => {
    const client = createClient(proxy.url).with({ timeoutMs: 300, retry: { maxAttempts: 2, baseDelayMs: 100, maxDelayMs: 100 } });
    proxy.reset();
    proxy.inject("GET", /^\/v1\/posts$/, { kind: "delay", ms: 3_000 }, { kind: "delay", ms: 3_000 });
    const started = Date.now();
    await assert.rejects(client.GET("/v1/posts"), (e: unknown) => e instanceof DOMException && e.name === "TimeoutError");
    const took = Date.now() - started;
    // Two 300 ms attempts and a 50–100 ms backoff.
    assert.ok(took >= 600 && took < 1_200, `took ${took} ms`);
    assert.equal(proxy.count("GET", /^\/v1\/posts$/), 2);
    console.log(`  measured: gave up after ${took} ms (bound 700 ms + scheduling)`);
  });
});
