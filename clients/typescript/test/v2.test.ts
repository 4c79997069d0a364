// Live tests of the v2 entry point against a running Herald at $HERALD_URL: the v2 posts flow
// (status, publishedAt, tags and the tag filter), and one post written through each version and
// read and updated through the other (shared ETags, v1's `published` view of v2's `status`).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { before, describe, it } from "node:test";

import * as v1 from "../src/v1/index.js";
import * as v2 from "../src/v2/index.js";

const BASE_URL = process.env.HERALD_URL;
if (!BASE_URL) {
  throw new Error("HERALD_URL is not set: start Herald (e.g. scripts/contract) and export HERALD_URL");
}
const baseUrl: string = BASE_URL;
const run = randomBytes(5).toString("hex");

describe("Herald TypeScript SDK v2 (live)", () => {
  let writer2: v2.HeraldClient;
  let writer1: v1.HeraldClient;

  before(async () => {
    const email = `ts2-${run}@example.com`;
    const password = `pw-${run}-secret`;
    const anonymous = v2.createClient(baseUrl);
    await v2.unwrap(anonymous.POST("/v2/auth/register", { body: { email, username: `ts2_${run}`, password } }));
    const login = await v2.unwrap(anonymous.POST("/v2/auth/login", { body: { email, password } }));
    writer2 = v2.createClient(baseUrl, { token: login.accessToken });
    writer1 = v1.createClient(baseUrl, { token: login.accessToken });
  });

  it("creates a draft with tags, publishes it once (publishedAt set), archives it", async () => {
    const tag = `t-${run}`;
    const created = await v2.unwrap(
      writer2.POST("/v2/posts", { body: { title: `v2 post ${run}`, content: "Written through v2.", tags: [tag, "sdk"] } }),
    );
    assert.equal(created.status, "draft");
    assert.equal(created.publishedAt, null);
    assert.deepEqual(created.tags, [tag, "sdk"]);

    const published = await v2.unwrap(
      writer2.PATCH("/v2/posts/{id}", { params: { path: { id: created.id } }, body: { status: "published" } }),
    );
    assert.equal(published.status, "published");
    assert.ok(published.publishedAt, "publishedAt is set when first published");

    const archived = await v2.unwrap(
      writer2.PATCH("/v2/posts/{id}", { params: { path: { id: created.id } }, body: { status: "archived" } }),
    );
    const republished = await v2.unwrap(
      writer2.PATCH("/v2/posts/{id}", { params: { path: { id: created.id } }, body: { status: "published" } }),
    );
    assert.equal(archived.status, "archived");
    assert.equal(republished.publishedAt, published.publishedAt, "publishedAt never changes after that");

    const page = await v2.unwrap(writer2.GET("/v2/posts", { params: { query: { tag, limit: 10 } } }));
    assert.deepEqual(page.data.map((p) => p.id), [created.id], "the tag filter keeps posts that carry it");

    const problem = await v2
      .unwrap(writer2.POST("/v2/posts", { body: { title: `dup tags ${run}`, content: "Tags must be distinct.", tags: ["a", "a"] } }))
      .then(
        () => assert.fail("duplicate tags accepted"),
        (error: unknown) => error,
      );
    assert.ok(v2.isProblem(problem));
    assert.equal(problem.status, 400);
    assert.equal(problem.code, "VALIDATION_FAILED");
  });

  it("a post written through v2 reads and updates through v1, and the reverse", async () => {
    const viaV2 = await v2.unwrap(
      writer2.POST("/v2/posts", {
        body: { title: `both ways ${run}`, content: "Shared by both versions.", status: "published", tags: ["keep"] },
      }),
    );
    const asV1 = await v1.unwrap(writer1.GET("/v1/posts/{id}", { params: { path: { id: viaV2.id } } }));
    assert.equal(asV1.published, true);
    assert.equal(asV1.etag, viaV2.etag, "one ETag for both representations");
    assert.equal("tags" in asV1, false, "v1 never sees tags");

    // v1 unpublishes with its own ETag; v2 sees a draft, tags untouched.
    const unpublished = await v1.unwrap(
      writer1.PATCH("/v1/posts/{id}", {
        params: { path: { id: viaV2.id }, header: { "If-Match": asV1.etag } },
        body: { published: false },
      }),
    );
    const back = await v2.unwrap(writer2.GET("/v2/posts/{id}", { params: { path: { id: viaV2.id } } }));
    assert.equal(back.status, "draft");
    assert.deepEqual(back.tags, ["keep"]);
    assert.equal(back.etag, unpublished.etag);

    // The reverse: written through v1, archived through v2, still a draft (`published: false`) in v1.
    const viaV1 = await v1.unwrap(
      writer1.POST("/v1/posts", { body: { title: `from v1 ${run}`, content: "Written through v1.", published: true } }),
    );
    const asV2 = await v2.unwrap(writer2.GET("/v2/posts/{id}", { params: { path: { id: viaV1.id } } }));
    assert.equal(asV2.status, "published");
    assert.deepEqual(asV2.tags, []);
    await v2.unwrap(
      writer2.PATCH("/v2/posts/{id}", {
        params: { path: { id: viaV1.id }, header: { "If-Match": asV2.etag } },
        body: { status: "archived" },
      }),
    );
    const archivedInV1 = await v1.unwrap(writer1.GET("/v1/posts/{id}", { params: { path: { id: viaV1.id } } }));
    assert.equal(archivedInV1.published, false);
  });

  it("exports the caller's posts and polls the operation to completion", async () => {
    const mine = await v2.unwrap(
      writer2.POST("/v2/posts", { body: { title: `exported ${run}`, content: "Goes into the export.", tags: ["export"] } }),
    );
    const started = await writer2.POST("/v2/exports", { body: { format: "ndjson" } });
    assert.equal(started.response.status, 202);
    const location = started.response.headers.get("operation-location");
    assert.ok(started.data, "the operation");
    assert.equal(location, `/v2/operations/${started.data.id}`);
    const id = started.data.id;

    const done = await v2.waitForOperation(
      () => writer2.GET("/v2/operations/{id}", { params: { path: { id } } }),
      { timeoutMs: 60_000 },
    );
    assert.equal(done.status, "succeeded");
    assert.equal(done.percentComplete, 100);
    assert.ok(done.result && done.result.count >= 1);

    const file = await writer2.GET("/v2/exports/{id}/file", { params: { path: { id } }, parseAs: "text" });
    assert.equal(file.response.headers.get("content-type"), "application/x-ndjson");
    const lines = (file.data as unknown as string).trim().split("\n").map((line) => JSON.parse(line) as v2.Post);
    assert.equal(lines.length, done.result.count);
    const exported = lines.find((post) => post.id === mine.id);
    assert.ok(exported, "the new post is in the file");
    assert.deepEqual(exported.tags, ["export"]);
  });
});
