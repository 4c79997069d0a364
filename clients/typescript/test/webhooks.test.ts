// Unit tests of the webhook signature helper, against the Standard Webhooks reference vector.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { signWebhook, verifyWebhook, WebhookVerificationError } from "../src/webhooks.js";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP = 1_614_265_330;
const BODY = '{"test": 2432232314}';
const SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

function headers(signature: string, timestamp = TIMESTAMP): Record<string, string> {
  return { "webhook-id": ID, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
}

describe("webhook signatures", () => {
  it("matches the Standard Webhooks reference vector", () => {
    assert.equal(signWebhook(SECRET, ID, TIMESTAMP, BODY), SIGNATURE);
    assert.deepEqual(verifyWebhook(SECRET, headers(SIGNATURE), BODY, { now: TIMESTAMP }), { test: 2432232314 });
  });

  it("accepts any one of several signatures (rotation), from Headers too", () => {
    const other = signWebhook("whsec_" + Buffer.alloc(32, 7).toString("base64"), ID, TIMESTAMP, BODY);
    const h = new Headers(headers(`${other} ${SIGNATURE}`));
    verifyWebhook(SECRET, h, new TextEncoder().encode(BODY), { now: TIMESTAMP });
  });

  it("rejects a changed body, a wrong secret, a stale timestamp and missing headers", () => {
    const reject = (f: () => unknown) => assert.throws(f, WebhookVerificationError);
    reject(() => verifyWebhook(SECRET, headers(SIGNATURE), '{"test": 1}', { now: TIMESTAMP }));
    reject(() =>
      verifyWebhook("whsec_" + Buffer.alloc(32).toString("base64"), headers(SIGNATURE), BODY, { now: TIMESTAMP }),
    );
    reject(() => verifyWebhook(SECRET, headers(SIGNATURE), BODY, { now: TIMESTAMP + 301 }));
    reject(() => verifyWebhook(SECRET, { "webhook-id": ID }, BODY, { now: TIMESTAMP }));
    reject(() => verifyWebhook(SECRET, headers("v1,AAAA"), BODY, { now: TIMESTAMP }));
  });
});
