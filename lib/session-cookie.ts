/**
 * The web console's refresh token as a cookie (docs/sessions.md). A client that sends `X-Session: cookie` on a sign-in,
 * a password change or a refresh gets its refresh token as an `HttpOnly`, `Secure`, `SameSite=Strict` cookie scoped to
 * the auth routes, not in the answer's body, so no script in the page can read it; its refresh and sign-out then send
 * no token and the cookie stands for it. Clients that keep the token themselves (apps, the API) change nothing.
 */
export const REFRESH_COOKIE = "aicunet_refresh";
/** The request header a client opts in with, and its value. */
export const SESSION_MODE_HEADER = "x-session";
export const COOKIE_SESSION = "cookie";
/** The only path the browser sends the cookie to: the refresh and sign-out routes live under it. */
const COOKIE_PATH = "/api/auth";
/** What a refresh token may be (the auth service makes base64url secrets): anything else in the cookie is ignored. */
const TOKEN_VALUE = /^[A-Za-z0-9_-]{1,200}$/;

/** The `Set-Cookie` value that hands the browser `token` for `maxAgeSeconds`, or that removes it (null). */
export function refreshCookie(token: string | null, maxAgeSeconds: number): string {
  const attributes = `Path=${COOKIE_PATH}; HttpOnly; Secure; SameSite=Strict`;
  return token === null
    ? `${REFRESH_COOKIE}=; ${attributes}; Max-Age=0`
    : `${REFRESH_COOKIE}=${token}; ${attributes}; Max-Age=${maxAgeSeconds}`;
}

/** The refresh token a `Cookie` header carries, if it carries a well-formed one. */
export function refreshTokenFromCookies(header: string | undefined): string | undefined {
  for (const pair of header?.split(";") ?? []) {
    const [name, value] = pair.trim().split("=", 2);
    if (name === REFRESH_COOKIE && value !== undefined && TOKEN_VALUE.test(value)) return value;
  }
  return undefined;
}
