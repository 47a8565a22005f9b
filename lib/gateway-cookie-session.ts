/**
 * The gateway's side of cookie sessions (lib/session-cookie.ts): on the `/api` route, a cookie session's refresh
 * token travels in its cookie instead of the request and answer bodies.
 */
import type { ServerResponse } from "node:http";
import { UnauthorizedError } from "./errors";
import type { GatewayRequest } from "./gateway-request";
import { COOKIE_SESSION, SESSION_MODE_HEADER, refreshCookie, refreshTokenFromCookies } from "./session-cookie";

/** Their answers carry tokens: no cache may keep them (RFC 6749 §5.1). */
export const TOKEN_ACTIONS = new Set(["auth.login", "auth.refresh", "auth.changePassword"]);
/** Actions that take a refresh token, which a cookie session sends as its cookie. */
const REFRESH_TOKEN_ACTIONS = new Set(["auth.refresh", "auth.logout"]);

const wantsCookieSession = (req: GatewayRequest) => req.headers[SESSION_MODE_HEADER] === COOKIE_SESSION;

/** A cookie session's refresh or sign-out: its cookie stands for the refresh token the body does not carry. */
export function takeRefreshTokenFromCookie(req: GatewayRequest): void {
  const action = req.$alias?.action;
  if (!action || !REFRESH_TOKEN_ACTIONS.has(action) || !wantsCookieSession(req)) return;
  const params = req.$params as { refreshToken?: unknown };
  if (params.refreshToken !== undefined) return;
  const token = refreshTokenFromCookies(req.headers.cookie);
  if (token === undefined) throw new UnauthorizedError("This browser holds no session", "INVALID_TOKEN");
  params.refreshToken = token;
}

/**
 * A cookie session's new tokens: the refresh token goes into the cookie (kept as long as the token lives:
 * `refreshTokenTtl` seconds), not the body; a sign-out removes it.
 */
export function giveRefreshTokenAsCookie(
  req: GatewayRequest,
  res: ServerResponse,
  data: unknown,
  refreshTokenTtl: number,
): unknown {
  const action = req.$alias?.action;
  if (!action || !wantsCookieSession(req)) return data;
  if (action === "auth.logout") res.setHeader("Set-Cookie", refreshCookie(null, 0));
  if (!TOKEN_ACTIONS.has(action)) return data;
  const { refreshToken, ...rest } = data as { refreshToken: string };
  res.setHeader("Set-Cookie", refreshCookie(refreshToken, refreshTokenTtl));
  return rest;
}
