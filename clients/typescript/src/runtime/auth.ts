/**
 * The session: the access token every request carries, refreshed before it expires and after a
 * 401, one refresh at a time. Refresh tokens rotate and the server takes a second concurrent
 * refresh with the same token for theft (it revokes every session of the user), so every
 * caller that finds the token stale waits for the one refresh in flight instead of starting
 * its own.
 *
 * - `body` mode (servers): the refresh token is kept here and sent as `{ refreshToken }`.
 * - `cookie` mode (browsers): the refresh token lives in the `refreshToken` HttpOnly cookie;
 *   the refresh is a POST with no body and no `Content-Type`, sent with credentials.
 */

export interface Tokens {
  accessToken: string;
  /** Body mode only; in cookie mode the browser keeps it in an HttpOnly cookie. */
  refreshToken?: string;
  /** When the access token expires (ms since the epoch), from `expiresIn`. */
  expiresAt?: number;
}

/** The login/refresh response fields the session reads. */
export interface TokenResponse {
  accessToken: string;
  refreshToken?: string;
  expiresIn?: number;
}

export interface AuthOptions {
  /** `body` (default): refresh with `{ refreshToken }`; `cookie`: with the HttpOnly cookie. */
  mode?: "body" | "cookie";
  /** The tokens to start with (e.g. from storage). */
  tokens?: Tokens;
  /** Called whenever the tokens change: after a login, a refresh, or `null` when refresh failed. */
  onTokens?: (tokens: Tokens | null) => void;
  /** Refresh this long before the access token expires (default 30 s). */
  refreshBeforeMs?: number;
}

/** Sends the refresh request (through the transport, without the session's own token). */
export type RefreshSender = (init: { body?: string; credentials?: RequestCredentials }) => Promise<Response>;

export class Session {
  readonly mode: "body" | "cookie";
  private tokens: Tokens | null;
  private inflight: Promise<boolean> | null = null;
  private generation = 0;
  private readonly onTokens?: (tokens: Tokens | null) => void;
  private readonly refreshBeforeMs: number;
  /** Set by the client that owns the session. */
  sender?: RefreshSender;

  constructor(options: AuthOptions = {}) {
    this.mode = options.mode ?? "body";
    this.tokens = options.tokens ?? null;
    this.onTokens = options.onTokens;
    this.refreshBeforeMs = options.refreshBeforeMs ?? 30_000;
  }

  /** The current tokens, or `null` when signed out. */
  get current(): Tokens | null {
    return this.tokens;
  }

  /** Replaces the tokens (e.g. with a login response); `null` signs out. */
  set(tokens: Tokens | null): void {
    this.tokens = tokens;
    this.generation += 1;
    this.onTokens?.(tokens);
  }

  /** Adopts a login or refresh response. */
  adopt(response: TokenResponse, now: number = Date.now()): void {
    this.set({
      accessToken: response.accessToken,
      refreshToken: this.mode === "body" ? response.refreshToken : undefined,
      expiresAt: response.expiresIn === undefined ? undefined : now + response.expiresIn * 1000,
    });
  }

  private canRefresh(): boolean {
    return this.sender !== undefined && (this.mode === "cookie" || !!this.tokens?.refreshToken);
  }

  /** The token to send now, refreshed first when it is about to expire. */
  async accessToken(now: number = Date.now()): Promise<string | undefined> {
    const expiresAt = this.tokens?.expiresAt;
    if (expiresAt !== undefined && now >= expiresAt - this.refreshBeforeMs && this.canRefresh()) {
      await this.refresh(this.tokens?.accessToken);
    }
    return this.tokens?.accessToken;
  }

  /**
   * Refreshes unless the token the caller saw as stale has been replaced meanwhile; joins the
   * refresh in flight if there is one. Resolves to whether a usable new token is there.
   */
  refresh(stale: string | undefined): Promise<boolean> {
    if (this.tokens?.accessToken !== stale && this.tokens !== null) return Promise.resolve(true);
    if (this.inflight) return this.inflight;
    if (!this.canRefresh()) return Promise.resolve(false);
    const generation = this.generation;
    this.inflight = this.doRefresh(generation).finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async doRefresh(generation: number): Promise<boolean> {
    const send = this.sender;
    if (!send) return false;
    const init =
      this.mode === "cookie"
        ? { credentials: "include" as const }
        : { body: JSON.stringify({ refreshToken: this.tokens?.refreshToken }) };
    const response = await send(init);
    if (this.generation !== generation) return this.tokens !== null; // someone signed in meanwhile
    if (response.ok) {
      this.adopt((await response.json()) as TokenResponse);
      return true;
    }
    if (response.status === 401 || response.status === 403) {
      this.set(null); // the refresh token is dead: signed out
    }
    return false;
  }
}
