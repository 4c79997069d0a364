// Live tests of the SDK against a running Herald at $HERALD_URL (scripts/contract starts one).
// Admin calls use $ADMIN_TOKEN, or log in as the seeded admin@example.com / admin123.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { before, describe, it } from "node:test";

import {
  createClient,
  etagOf,
  isProblem,
  Problem,
  unwrap,
  unwrapConditional,
  unwrapOptional,
  type ErrorStatus,
  type HeraldClient,
  type Post,
} from "../src/index.js";

const BASE_URL = process.env.HERALD_URL;
if (!BASE_URL) {
  throw new Error("HERALD_URL is not set: start Herald (e.g. scripts/contract) and export HERALD_URL");
}
const baseUrl: string = BASE_URL;

const run = randomBytes(5).toString("hex"); // [0-9a-f]: valid in usernames
const username = `ts_${run}`;
const email = `ts-${run}@example.com`;
const password = `pw-${run}-secret`;

/** Awaits `promise`, expecting it to throw a Problem; returns it. */
async function problemOf<S extends number>(promise: Promise<unknown>): Promise<Problem<S>> {
  try {
    await promise;
  } catch (error) {
    if (isProblem<S>(error)) return error;
    throw error;
  }
  assert.fail("expected a Problem, but the call succeeded");
}

function assertProblemShape(problem: Problem, status: number, code: string): void {
  assert.equal(problem.status, status);
  assert.equal(problem.code, code);
  assert.equal(problem.response.headers.get("X-Error-Code"), code);
  assert.match(problem.response.headers.get("Content-Type") ?? "", /^application\/problem\+json/);
  assert.ok(problem.requestId, "problem carries a requestId");
  assert.equal(problem.requestId, problem.response.headers.get("X-Request-Id"));
  assert.equal(problem.body.status, status);
  assert.equal(typeof problem.body.title, "string");
  assert.equal(typeof problem.body.type, "string");
}

describe("Herald TypeScript SDK (live)", () => {
  const anonymous = createClient(baseUrl);
  let user: HeraldClient;
  let admin: HeraldClient;
  let refreshToken = "";
  let post: Post;
  let etag = "";

  before(async () => {
    let adminToken = process.env.ADMIN_TOKEN;
    if (!adminToken) {
      const login = await unwrap(
        anonymous.POST("/v1/auth/login", {
          body: { email: "admin@example.com", password: "admin123" },
        }),
      );
      adminToken = login.accessToken;
    }
    admin = createClient(baseUrl, { token: adminToken });
  });

  it("registers a user (201 + Location)", async () => {
    const { data, error, response } = await anonymous.POST("/v1/auth/register", {
      body: { email, username, password, firstName: "Type", lastName: "Script" },
    });
    assert.equal(error, undefined);
    assert.equal(response.status, 201);
    assert.ok(data);
    assert.equal(data.email, email);
    assert.equal(data.username, username);
    assert.equal(data.role, "USER");
    assert.equal(response.headers.get("Location"), `/v1/users/${data.id}`);
  });

  it("rejects a duplicate registration with a typed 409", async () => {
    const problem = await problemOf<ErrorStatus<"/v1/auth/register", "post">>(
      unwrap(anonymous.POST("/v1/auth/register", { body: { email, username: `${username}x`, password } })),
    );
    assertProblemShape(problem, 409, "EMAIL_TAKEN");
  });

  it("logs in and reads /v1/users/me with the bearer token", async () => {
    const login = await unwrap(anonymous.POST("/v1/auth/login", { body: { email, password } }));
    assert.equal(login.tokenType, "Bearer");
    assert.ok(login.expiresIn > 0);
    assert.equal(login.user.email, email);
    refreshToken = login.refreshToken;
    user = createClient(baseUrl, { token: login.accessToken });
    const me = await unwrap(user.GET("/v1/users/me"));
    assert.equal(me.username, username);
  });

  it("refreshes the session with the refresh token in the body (rotation)", async () => {
    const refreshed = await unwrap(anonymous.POST("/v1/auth/refresh", { body: { refreshToken } }));
    assert.notEqual(refreshed.refreshToken, refreshToken, "refresh rotates the token");
    assert.equal(refreshed.user.email, email);
    user.setToken(refreshed.accessToken);
    const me = await unwrap(user.GET("/v1/users/me"));
    assert.equal(me.email, email);
    refreshToken = refreshed.refreshToken;
  });

  it("answers 401 UNAUTHENTICATED without a token", async () => {
    // A fresh client: `anonymous` adopted the tokens of the logins it made.
    const problem = await problemOf(unwrap(createClient(baseUrl).GET("/v1/users/me")));
    assertProblemShape(problem, 401, "UNAUTHENTICATED");
    assert.match(problem.response.headers.get("WWW-Authenticate") ?? "", /^Bearer/);
  });

  it("creates a post (201 + ETag + Location)", async () => {
    const { data, response } = await user.POST("/v1/posts", {
      body: { title: `Hello from TypeScript ${run}`, content: "Generated types, live server, real ETags.", published: false },
    });
    assert.equal(response.status, 201);
    assert.ok(data);
    post = data;
    assert.equal(post.author.username, username);
    assert.equal(post.published, false);
    assert.equal(etagOf(response), post.etag);
    assert.equal(response.headers.get("Location"), `/v1/posts/${post.id}`);
  });

  it("GETs the post with its ETag, and 304 with If-None-Match", async () => {
    const { data, response } = await user.GET("/v1/posts/{id}", { params: { path: { id: post.id } } });
    assert.equal(response.status, 200);
    assert.ok(data);
    etag = etagOf(response) ?? "";
    assert.match(etag, /^"[^"]+"$/, "a strong, quoted ETag");
    assert.equal(data.etag, etag);

    const again = await unwrapConditional(
      user.GET("/v1/posts/{id}", { params: { path: { id: post.id }, header: { "If-None-Match": etag } } }),
    );
    assert.deepEqual(again, { status: "not-modified", etag });
    const stale = await unwrapConditional(
      user.GET("/v1/posts/{id}", { params: { path: { id: post.id }, header: { "If-None-Match": '"0-0"' } } }),
    );
    assert.equal(stale.status, "modified");
    assert.equal(stale.status === "modified" && stale.data.id, post.id);
  });

  it("PATCHes with If-Match (merge-patch)", async () => {
    const { data, response } = await user.PATCH("/v1/posts/{id}", {
      params: { path: { id: post.id }, header: { "If-Match": etag } },
      body: { title: `Edited from TypeScript ${run}`, published: true },
    });
    assert.equal(response.status, 200);
    assert.ok(data);
    assert.equal(data.title, `Edited from TypeScript ${run}`);
    assert.equal(data.published, true);
    assert.equal(data.content, post.content, "merge-patch keeps fields it does not mention");
    assert.notEqual(data.etag, etag);
    assert.equal(etagOf(response), data.etag);
  });

  it("answers a PATCH with the stale ETag with a typed 412 Problem", async () => {
    const problem = await problemOf<ErrorStatus<"/v1/posts/{id}", "patch">>(
      unwrap(
        user.PATCH("/v1/posts/{id}", {
          params: { path: { id: post.id }, header: { "If-Match": etag } },
          body: { title: "Lost update, rejected" },
        }),
      ),
    );
    assertProblemShape(problem, 412, "PRECONDITION_FAILED");
    assert.equal(problem.instance, `/v1/posts/${post.id}`);
  });

  it("answers a validation failure with 400 VALIDATION_FAILED and errors[].field", async () => {
    const problem = await problemOf(unwrap(user.POST("/v1/posts", { body: { title: "Hey", content: "Long enough content here." } })));
    assertProblemShape(problem, 400, "VALIDATION_FAILED");
    assert.ok(
      problem.errors.some((e) => e.field === "title"),
      `errors[] names the title: ${JSON.stringify(problem.errors)}`,
    );
  });

  it("deletes the post (200 with the post), then 204 on a retry", async () => {
    const first = await user.DELETE("/v1/posts/{id}", { params: { path: { id: post.id } } });
    assert.equal(first.response.status, 200);
    assert.equal(first.data?.id, post.id);
    const second = await unwrapOptional(user.DELETE("/v1/posts/{id}", { params: { path: { id: post.id } } }));
    assert.equal(second, null, "204: already gone");
    const gone = await problemOf(unwrap(user.GET("/v1/posts/{id}", { params: { path: { id: post.id } } })));
    assertProblemShape(gone, 404, "POST_NOT_FOUND");
  });

  it("upserts an airport as the admin: PUT 201 then 200, PATCH takeoffsPerHour null", async () => {
    // A code of this run (3 uppercase letters); clear any leftover first.
    const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const bytes = randomBytes(3);
    const code = Array.from(bytes, (b) => letters[b % 26]).join("");
    const path = { code };
    const cleared = await admin.DELETE("/v1/airports/{code}", { params: { path } });
    assert.ok([200, 204].includes(cleared.response.status));

    const created = await admin.PUT("/v1/airports/{code}", {
      params: { path },
      body: { runways: 2, takeoffsPerHour: 40 },
    });
    assert.equal(created.response.status, 201, JSON.stringify(created.error));
    assert.equal(created.data?.airportCode, code);
    assert.equal(created.data?.takeoffsPerHour, 40);

    const replaced = await admin.PUT("/v1/airports/{code}", {
      params: { path },
      body: { runways: 3, takeoffsPerHour: 55 },
    });
    assert.equal(replaced.response.status, 200, JSON.stringify(replaced.error));
    assert.equal(replaced.data?.runways, 3);
    const replacedEtag = etagOf(replaced.response);
    assert.ok(replacedEtag);

    const patched = await admin.PATCH("/v1/airports/{code}", {
      params: { path, header: { "If-Match": replacedEtag } },
      body: { takeoffsPerHour: null },
    });
    assert.equal(patched.response.status, 200, JSON.stringify(patched.error));
    assert.equal(patched.data?.takeoffsPerHour, null);
    assert.equal(patched.data?.runways, 3);

    const forbidden = await problemOf(
      unwrap(user.PUT("/v1/airports/{code}", { params: { path }, body: { runways: 1 } })),
    );
    assertProblemShape(forbidden, 403, "FORBIDDEN");

    const removed = await admin.DELETE("/v1/airports/{code}", { params: { path } });
    assert.equal(removed.response.status, 200);
  });

  it("refreshes in cookie mode as a browser does: no body, no Content-Type, the HttpOnly cookie", async () => {
    // Node's fetch keeps no cookies: this fetch plays the browser's cookie jar for the API's path.
    const jar = new Map<string, string>();
    const refreshes: Request[] = [];
    const browserFetch = async (request: Request): Promise<Response> => {
      if (new URL(request.url).pathname === "/v1/auth/refresh") refreshes.push(request.clone());
      const headers = new Headers(request.headers);
      if (jar.size && request.credentials === "include") headers.set("Cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
      const response = await fetch(new Request(request, { headers }));
      for (const cookie of response.headers.getSetCookie()) {
        const [pair = ""] = cookie.split(";");
        const [name = "", value = ""] = pair.split("=");
        if (value) jar.set(name.trim(), value);
        else jar.delete(name.trim());
      }
      return response;
    };
    const changes: unknown[] = [];
    const browser = createClient(baseUrl, { auth: { mode: "cookie", onTokens: (t) => changes.push(t) }, fetch: browserFetch });
    await unwrap(browser.POST("/v1/auth/login", { body: { email, password } }));
    assert.ok(jar.has("refreshToken"), "the login set the refresh cookie");
    assert.equal(browser.session.current?.refreshToken, undefined, "cookie mode keeps no refresh token in JS");
    const before = browser.session.current?.accessToken;
    browser.setToken("not-a-valid-token");
    const me = await unwrap(browser.GET("/v1/users/me"));
    assert.equal(me.email, email);
    assert.equal(refreshes.length, 1);
    const refresh = refreshes[0]!;
    assert.equal(refresh.headers.get("Content-Type"), null);
    assert.equal((await refresh.text()).length, 0);
    assert.notEqual(browser.session.current?.accessToken, before);
    assert.equal(changes.length, 3, "login, setToken, refresh");
  });

  it("logs out (204)", async () => {
    const { response } = await user.POST("/v1/auth/logout");
    assert.equal(response.status, 204);
  });
});
