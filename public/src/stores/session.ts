/**
 * The signed-in user's session (docs/sessions.md, "The web console's session").
 * - The refresh token is an `HttpOnly` cookie no script here can read: sign-in, refresh and sign-out send
 *   `X-Session: cookie` and the cookie stands for the token.
 * - The access token lives in memory, shared by this browser's tabs over a BroadcastChannel. A tab that opens (a
 *   reload, a link opened in a new tab) restores the session from the cookie.
 * - One tab refreshes at a time (a Web Lock): a refresh token works once, and two tabs spending it together would end
 *   the session for both.
 * - A refresh the server refuses (401) ends the session with a notice. One that is rate-limited or cannot reach the
 *   server is retried and never signs anyone out.
 */
import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";
import { hasPermission } from "../../../lib/grants";
import { ApiError, publicApi } from "../api/http";

export interface Me {
  id: string;
  email: string;
  displayName: string;
  roles: string[];
  permissions: string[];
}

interface Tokens {
  accessToken: string;
  expiresIn: number;
}

export interface SessionState {
  accessToken: string | null;
  user: Me | null;
  /** Why the user is back at the sign-in page, if not by choice. */
  notice: string | null;
  /** True while an opened tab restores its session. */
  restoring: boolean;
  restore(): Promise<void>;
  signIn(email: string, password: string): Promise<void>;
  /**
   * Changes the password with the current one and signs in with the tokens the answer carries (the way in for an
   * account whose sign-in answered `PASSWORD_CHANGE_REQUIRED`).
   */
  changePassword(email: string, currentPassword: string, newPassword: string): Promise<void>;
  signOut(): Promise<void>;
  /** New tokens from the cookie; false when there are none now (the session ended, or the server cannot be reached). */
  refresh(): Promise<boolean>;
  expire(notice: string): void;
  can(permission: string): boolean;
}

/** Not a secret: whether this browser signed in, so a first visit does not ask the server for a session it lacks. */
const SIGNED_IN_HINT = "aicunet.signedIn";
export const SESSION_ENDED = "Your session has ended. Please sign in again.";
/** Retries of a refresh that failed for a reason other than a refused token, and the longest wait between them. */
const REFRESH_ATTEMPTS = 5;
const MAX_RETRY_WAIT_MS = 15_000;
/** After the last retry failed, the next try: the session stays, calls fail meanwhile with the reason. */
const RETRY_LATER_MS = 30_000;

type Message = { kind: "tokens"; tokens: Tokens; user: Me } | { kind: "ended"; notice: string | null };

const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("aicunet.session");
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | undefined;
/** How many times this tab got tokens, from the server or from another tab. */
let tokensReceived = 0;

/** Refreshes at 80% of the token's life, so calls rarely meet an expired one. */
function scheduleRefresh(afterMs: number) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void sessionStore.getState().refresh(), afterMs);
}

async function fetchMe(accessToken: string): Promise<Me> {
  const res = await fetch("/api/auth/me", { headers: { authorization: `Bearer ${accessToken}` } });
  if (!res.ok) throw new ApiError(res.status, "HTTP_ERROR", `Could not load your account (${res.status})`, null, null);
  return (await res.json()) as Me;
}

/** This tab now holds `tokens`; `share` tells the other tabs (false when they told us). */
function adopt(tokens: Tokens, user: Me, share: boolean) {
  tokensReceived++;
  sessionStore.setState({ accessToken: tokens.accessToken, user, notice: null });
  localStorage.setItem(SIGNED_IN_HINT, "1");
  scheduleRefresh(tokens.expiresIn * 800);
  if (share) channel?.postMessage({ kind: "tokens", tokens, user } satisfies Message);
}

function end(notice: string | null, share: boolean) {
  clearTimeout(refreshTimer);
  localStorage.removeItem(SIGNED_IN_HINT);
  sessionStore.setState({ accessToken: null, user: null, notice, restoring: false });
  if (share) channel?.postMessage({ kind: "ended", notice } satisfies Message);
}

channel?.addEventListener("message", (event: MessageEvent<Message>) => {
  const message = event.data;
  if (message.kind === "tokens") adopt(message.tokens, message.user, false);
  else end(message.notice, false);
});

/** Runs `work` while no other tab of this browser refreshes (where the browser has Web Locks). */
async function oneTabAtATime<T>(work: () => Promise<T>): Promise<T> {
  const locks = typeof navigator === "undefined" ? undefined : navigator.locks;
  return locks ? await locks.request("aicunet.refresh", work) : work();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The refresh, retried while it is rate-limited, failing on the server or unreachable; a refusal (401) is final. */
async function refreshTokens(): Promise<Tokens> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await publicApi<Tokens>("POST", "/api/auth/refresh", {});
    } catch (err) {
      if ((err instanceof ApiError && err.status === 401) || attempt === REFRESH_ATTEMPTS) throw err;
      const retryAfter = err instanceof ApiError ? Number(err.retryAfter) * 1000 : NaN;
      await sleep(Math.min(MAX_RETRY_WAIT_MS, Number.isFinite(retryAfter) ? retryAfter : 1000 * 2 ** (attempt - 1)));
    }
  }
}

export const sessionStore = createStore<SessionState>()((set, get) => ({
  accessToken: null,
  user: null,
  notice: null,
  restoring: false,

  async restore() {
    if (get().user || localStorage.getItem(SIGNED_IN_HINT) === null) return;
    set({ restoring: true });
    await get().refresh();
    set({ restoring: false });
  },

  async signIn(email, password) {
    await startSession(await publicApi<Tokens>("POST", "/api/auth/login", { email, password }));
  },

  async changePassword(email, currentPassword, newPassword) {
    await startSession(await publicApi<Tokens>("POST", "/api/auth/password", { email, currentPassword, newPassword }));
  },

  async signOut() {
    end(null, true);
    // The cookie's session is revoked and the cookie removed; signing out here does not wait for the answer.
    await publicApi("POST", "/api/auth/logout", {}).catch(() => undefined);
  },

  refresh() {
    refreshing ??= (async () => {
      const received = tokensReceived;
      try {
        return await oneTabAtATime(async () => {
          // Another tab refreshed while this one waited for its turn: its tokens came over the channel.
          if (tokensReceived !== received && get().accessToken) return true;
          const tokens = await refreshTokens();
          adopt(tokens, await fetchMe(tokens.accessToken), true);
          return true;
        });
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          // Only a session this tab held has "ended"; a tab that found none just shows the sign-in page.
          end(get().user ? SESSION_ENDED : null, true);
        } else if (get().user) {
          scheduleRefresh(RETRY_LATER_MS);
        }
        return false;
      }
    })().finally(() => (refreshing = undefined));
    return refreshing;
  },

  expire(notice) {
    end(notice, true);
  },

  can(permission) {
    return hasPermission(get().user?.permissions ?? [], permission);
  },
}));

export const useSession = <T>(select: (state: SessionState) => T): T => useStore(sessionStore, select);

async function startSession(tokens: Tokens): Promise<void> {
  adopt(tokens, await fetchMe(tokens.accessToken), true);
}
