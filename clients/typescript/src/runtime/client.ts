/**
 * A client for one API version: openapi-fetch over the runtime's transport, sharing one
 * session (tokens) with every client derived from it by `with(...)`.
 */
import createFetchClient, { type Client, type Middleware } from "openapi-fetch";

import { Session, type AuthOptions } from "./auth.js";
import { Transport, type OperationMeta, type TransportOptions } from "./transport.js";

export interface ClientOptions extends TransportOptions {
  /** A bearer access token to start with (shorthand for `auth.tokens.accessToken`). */
  token?: string;
  /** Tokens, refresh mode and the hook called when they change. */
  auth?: AuthOptions;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
}

export type HeraldClient<Paths extends {}> = Client<Paths> & {
  /** The tokens this client (and every client made from it by `with`) sends and refreshes. */
  readonly session: Session;
  /** Replace (or clear) the bearer access token used from now on. */
  setToken(token: string | undefined): void;
  /** The same client, sharing the session, with other timeout, retry or telemetry settings. */
  with(overrides: TransportOptions): HeraldClient<Paths>;
};

const mergePatch: Middleware = {
  onRequest({ request }) {
    // The API takes PATCH bodies as JSON merge patches only.
    if (request.method === "PATCH" && request.headers.get("Content-Type")?.split(";")[0]?.trim() === "application/json") {
      request.headers.set("Content-Type", "application/merge-patch+json");
    }
    return request;
  },
};

export function createHeraldClient<Paths extends {}>(
  baseUrl: string,
  options: ClientOptions,
  meta: OperationMeta,
  shared?: Session,
): HeraldClient<Paths> {
  const session =
    shared ??
    new Session({
      ...options.auth,
      tokens: options.auth?.tokens ?? (options.token ? { accessToken: options.token } : undefined),
    });
  const transport = new Transport(baseUrl, session, meta, options);
  session.sender ??= (init) => transport.sendRefresh(init);
  const client = createFetchClient<Paths>({
    baseUrl,
    headers: { Accept: "application/json, application/problem+json", ...options.headers },
    // Browsers keep the refresh cookie only for credentialed requests.
    ...(session.mode === "cookie" ? { credentials: "include" as const } : {}),
    fetch: (request: Request) => transport.send(request),
  });
  client.use(mergePatch);
  return Object.assign(client, {
    session,
    setToken(token: string | undefined) {
      session.set(token ? { accessToken: token, refreshToken: session.current?.refreshToken } : null);
    },
    with(overrides: TransportOptions) {
      return createHeraldClient<Paths>(baseUrl, { ...options, ...overrides }, meta, session);
    },
  });
}
