/**
 * The signed-in user's session. The access token lives in memory only; the refresh token also in this tab's
 * sessionStorage (never localStorage), so a reload restores the session and closing the tab ends it. The access
 * token is refreshed before it expires; a refresh that fails ends the session with a notice.
 */
import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";
import { hasPermission } from "../../../lib/grants";
import { publicApi } from "../api/client";

export interface Me {
  id: string;
  email: string;
  displayName: string;
  roles: string[];
  permissions: string[];
}

interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface SessionState {
  accessToken: string | null;
  refreshToken: string | null;
  user: Me | null;
  /** Why the user is back at the sign-in page, if not by choice. */
  notice: string | null;
  /** True while a reloaded tab restores its session. */
  restoring: boolean;
  restore(): Promise<void>;
  signIn(email: string, password: string): Promise<void>;
  /**
   * Changes the password with the current one and signs in with the tokens the answer carries (the way in for an
   * account whose sign-in answered `PASSWORD_CHANGE_REQUIRED`).
   */
  changePassword(email: string, currentPassword: string, newPassword: string): Promise<void>;
  signOut(): Promise<void>;
  /** Exchanges the refresh token for new tokens; false (and the session ended) when that fails. */
  refresh(): Promise<boolean>;
  expire(notice: string): void;
  can(permission: string): boolean;
}

const STORED_REFRESH_TOKEN = "aicunet.refreshToken";

let refreshTimer: ReturnType<typeof setTimeout> | undefined;

function keepRefreshToken(token: string | null) {
  if (token) sessionStorage.setItem(STORED_REFRESH_TOKEN, token);
  else sessionStorage.removeItem(STORED_REFRESH_TOKEN);
}
let refreshing: Promise<boolean> | undefined;

/** Refreshes at 80% of the token's life, so calls rarely meet an expired one. */
function scheduleRefresh(expiresIn: number) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void sessionStore.getState().refresh(), expiresIn * 800);
}

async function fetchMe(accessToken: string): Promise<Me> {
  const res = await fetch("/api/auth/me", { headers: { authorization: `Bearer ${accessToken}` } });
  if (!res.ok) throw new Error(`Could not load your account (${res.status})`);
  return (await res.json()) as Me;
}

export const sessionStore = createStore<SessionState>()((set, get) => ({
  accessToken: null,
  refreshToken: null,
  user: null,
  notice: null,
  restoring: false,

  async restore() {
    const stored = sessionStorage.getItem(STORED_REFRESH_TOKEN);
    if (!stored || get().user) return;
    set({ refreshToken: stored, restoring: true });
    await get().refresh();
    set({ restoring: false });
  },

  async signIn(email, password) {
    await startSession(await publicApi<TokenPair>("POST", "/api/auth/login", { email, password }));
  },

  async changePassword(email, currentPassword, newPassword) {
    await startSession(
      await publicApi<TokenPair>("POST", "/api/auth/password", { email, currentPassword, newPassword }),
    );
  },

  async signOut() {
    const { refreshToken } = get();
    clearTimeout(refreshTimer);
    keepRefreshToken(null);
    set({ accessToken: null, refreshToken: null, user: null, notice: null });
    if (refreshToken) {
      // Revoke it server-side too; signing out locally does not wait for the answer.
      void fetch("/api/auth/logout", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refreshToken }),
      }).catch(() => undefined);
    }
  },

  refresh() {
    refreshing ??= (async () => {
      const refreshToken = get().refreshToken;
      if (!refreshToken) return false;
      try {
        const tokens = await publicApi<TokenPair>("POST", "/api/auth/refresh", { refreshToken });
        const user = await fetchMe(tokens.accessToken);
        set({ accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, user });
        keepRefreshToken(tokens.refreshToken);
        scheduleRefresh(tokens.expiresIn);
        return true;
      } catch {
        get().expire("Your session has expired. Please sign in again.");
        return false;
      }
    })().finally(() => (refreshing = undefined));
    return refreshing;
  },

  expire(notice) {
    clearTimeout(refreshTimer);
    keepRefreshToken(null);
    set({ accessToken: null, refreshToken: null, user: null, notice });
  },

  can(permission) {
    return hasPermission(get().user?.permissions ?? [], permission);
  },
}));

export const useSession = <T>(select: (state: SessionState) => T): T => useStore(sessionStore, select);

async function startSession(tokens: TokenPair): Promise<void> {
  const user = await fetchMe(tokens.accessToken);
  sessionStore.setState({ accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, user, notice: null });
  keepRefreshToken(tokens.refreshToken);
  scheduleRefresh(tokens.expiresIn);
}
