// A fault-injecting HTTP proxy in front of Herald, started by the tests: for requests that
// match a rule it drops the connection before forwarding (Herald never sees the request), drops
// it after Herald answered (the client never sees the answer), answers 503 with Retry-After
// itself, or delays. It logs every request it receives, for the tests to count.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Fault =
  | { kind: "drop-before" }
  | { kind: "drop-after" }
  | { kind: "unavailable"; retryAfterSeconds: number }
  | { kind: "delay"; ms: number };

export interface Seen {
  method: string;
  path: string;
  fault: Fault["kind"] | "none";
  headers: IncomingMessage["headers"];
}

interface Rule {
  method: string;
  path: RegExp;
  faults: Fault[];
}

const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"];

export class FaultProxy {
  readonly seen: Seen[] = [];
  private rules: Rule[] = [];
  private constructor(
    private readonly server: Server,
    private readonly target: URL,
  ) {}

  static async start(target: string): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((req, res) => void proxy?.handle(req, res));
    proxy = new FaultProxy(server, new URL(target));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next requests matching `method` and `path` get these faults, one each, in order. */
  inject(method: string, path: RegExp, ...faults: Fault[]): void {
    this.rules.push({ method, path, faults });
  }

  /** How many requests matching `method` and `path` the proxy received. */
  count(method: string, path: RegExp): number {
    return this.seen.filter((s) => s.method === method && path.test(s.path)).length;
  }

  reset(): void {
    this.rules = [];
    this.seen.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private nextFault(method: string, path: string): Fault | undefined {
    const rule = this.rules.find((r) => r.method === method && r.path.test(path) && r.faults.length > 0);
    return rule?.faults.shift();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://proxy").pathname;
    const fault = this.nextFault(method, path);
    this.seen.push({ method, path, fault: fault?.kind ?? "none", headers: req.headers });

    if (fault?.kind === "drop-before") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "unavailable") {
      res.writeHead(503, {
        "Content-Type": "application/problem+json",
        "Retry-After": String(fault.retryAfterSeconds),
        "X-Error-Code": "SERVICE_UNAVAILABLE",
      });
      res.end(JSON.stringify({ status: 503, code: "SERVICE_UNAVAILABLE", title: "Service Unavailable", detail: "injected" }));
      return;
    }
    if (fault?.kind === "delay") {
      await new Promise((resolve) => setTimeout(resolve, fault.ms));
      if (req.socket.destroyed) return; // the client gave up: Herald never sees it
    }
    let upstream: Awaited<ReturnType<FaultProxy["forward"]>>;
    try {
      upstream = await this.forward(req, method, body);
    } catch {
      res.writeHead(502).end();
      return;
    }
    if (fault?.kind === "drop-after") {
      req.socket.destroy(); // Herald acted; the client never hears of it
      return;
    }
    res.writeHead(upstream.status, upstream.headers);
    res.end(upstream.body);
  }

  private forward(
    req: IncomingMessage,
    method: string,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.includes(name)) headers[name] = value;
    }
    headers.host = this.target.host;
    headers["content-length"] = String(body.length);
    return new Promise((resolve, reject) => {
      const out = httpRequest(new URL(req.url ?? "/", this.target), { method, headers }, (upstream) => {
        const parts: Buffer[] = [];
        upstream.on("data", (c: Buffer) => parts.push(c));
        upstream.on("end", () => {
          const h: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(upstream.headers)) {
            if (value !== undefined && !HOP_BY_HOP.includes(name)) h[name] = value;
          }
          const payload = Buffer.concat(parts);
          h["content-length"] = String(payload.length);
          resolve({ status: upstream.statusCode ?? 502, headers: h, body: payload });
        });
        upstream.on("error", reject);
      });
      out.on("error", reject);
      out.end(body);
    });
  }
}
