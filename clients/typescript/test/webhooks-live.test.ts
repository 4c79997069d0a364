// Live test of webhooks through the SDK: an ADMIN creates an endpoint pointing at a receiver on
// 127.0.0.1 (Herald in development allows private targets), asks for a test send, and the
// delivery verifies with the SDK's helper and the secret shown at creation.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";

import { createClient, unwrap, type HeraldClient } from "../src/index.js";
import { verifyWebhook } from "../src/webhooks.js";

const BASE_URL = process.env.HERALD_URL;
if (!BASE_URL) {
  throw new Error("HERALD_URL is not set: start Herald (e.g. scripts/contract) and export HERALD_URL");
}
const baseUrl: string = BASE_URL;

interface Delivery {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

describe("webhooks (live)", () => {
  let admin: HeraldClient;
  const deliveries: Delivery[] = [];
  let waiting: (() => void) | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
      waiting?.();
    });
  });

  before(async () => {
    let adminToken = process.env.ADMIN_TOKEN;
    if (!adminToken) {
      const login = await unwrap(
        createClient(baseUrl).POST("/v1/auth/login", {
          body: { email: "admin@example.com", password: "admin123" },
        }),
      );
      adminToken = login.accessToken;
    }
    admin = createClient(baseUrl, { token: adminToken });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });

  after(() => server.close());

  it("creates an endpoint, receives a test delivery and verifies its signature", async () => {
    const port = (server.address() as AddressInfo).port;
    const created = await unwrap(
      admin.POST("/v1/webhooks", {
        body: { url: `http://127.0.0.1:${port}/hook`, eventTypes: ["post.created"], description: "SDK live test" },
      }),
    );
    assert.match(created.secret, /^whsec_/);
    try {
      const shown = await unwrap(admin.GET("/v1/webhooks/{id}", { params: { path: { id: created.id } } }));
      assert.equal((shown as Record<string, unknown>).secret, undefined, "the secret is shown only once");

      const arrived = new Promise<void>((resolve) => (waiting = resolve));
      const accepted = await unwrap(admin.POST("/v1/webhooks/{id}/test", { params: { path: { id: created.id } } }));
      await Promise.race([
        arrived,
        new Promise((_, reject) => setTimeout(() => reject(new Error("no delivery within 15 s")), 15_000)),
      ]);
      const delivery = deliveries.find((d) => d.headers["webhook-id"] === accepted.eventId);
      assert.ok(delivery, "the test event was delivered");
      const event = verifyWebhook<{ id: string; type: string }>(created.secret, delivery.headers, delivery.body);
      assert.equal(event.type, "webhook.test");
      assert.equal(event.id, accepted.eventId);
      assert.throws(() => verifyWebhook(created.secret, delivery.headers, Buffer.from("{}")));
    } finally {
      await admin.DELETE("/v1/webhooks/{id}", { params: { path: { id: created.id } } });
    }
  });
});
