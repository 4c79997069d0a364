/**
 * Verifying Herald webhook deliveries (Standard Webhooks): `webhook-signature` holds one or more
 * space-separated `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the base64 part of
 * the endpoint's `whsec_` secret. Two signatures arrive for 24 hours after a rotation; either
 * one verifying is enough. Node only (node:crypto): import it from `@herald/client/webhooks`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Why a delivery was rejected. */
export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

export interface VerifyOptions {
  /** How far `webhook-timestamp` may be from now, in seconds (default 300): replay protection. */
  toleranceSeconds?: number;
  /** The current time in unix seconds (tests). */
  now?: number;
}

/** A header lookup for `Headers`, a plain object (Node's `IncomingHttpHeaders`) or a Map. */
export type WebhookHeaders = Headers | Map<string, string> | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  if (headers instanceof Map) return headers.get(name) ?? headers.get(name.toLowerCase());
  const value = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(" ") : value;
}

/** The `v1,<base64>` signature of one message under one `whsec_` secret. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string | Uint8Array): string {
  if (!secret.startsWith("whsec_")) throw new WebhookVerificationError("the secret does not start with whsec_");
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const mac = createHmac("sha256", key);
  mac.update(`${id}.${timestamp}.`);
  mac.update(typeof body === "string" ? Buffer.from(body, "utf8") : body);
  return `v1,${mac.digest("base64")}`;
}

/**
 * Checks a delivery's signature and timestamp; throws `WebhookVerificationError` otherwise.
 * Pass the raw body exactly as received (not re-serialized JSON). Returns the parsed event.
 */
export function verifyWebhook<T = unknown>(
  secret: string,
  headers: WebhookHeaders,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): T {
  const id = header(headers, "webhook-id");
  const timestampText = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestampText || !signatures) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  const timestamp = Number(timestampText);
  if (!Number.isInteger(timestamp)) throw new WebhookVerificationError("invalid webhook-timestamp");
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - timestamp) > tolerance) {
    throw new WebhookVerificationError("webhook-timestamp is outside the tolerance");
  }
  const expected = Buffer.from(signWebhook(secret, id, timestamp, body));
  const matches = signatures
    .split(" ")
    .filter((s) => s.startsWith("v1,"))
    .some((s) => {
      const candidate = Buffer.from(s);
      return candidate.length === expected.length && timingSafeEqual(candidate, expected);
    });
  if (!matches) throw new WebhookVerificationError("no signature matches the secret");
  const text = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
  return JSON.parse(text) as T;
}
