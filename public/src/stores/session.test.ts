import { sessionStore } from "./session";

interface FakeResponse {
  ok: boolean;
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

const reply = (status: number, body: unknown, headers: Record<string, string> = {}): FakeResponse => ({
  ok: status < 400,
  status,
  statusText: String(status),
  headers: { get: (name) => headers[name.toLowerCase()] ?? null },
  json: async () => body,
});

const me = {
  id: "u1",
  email: "op@example.com",
  displayName: "Op",
  roles: ["operator"],
  permissions: ["dlq:*", "logs:read"],
};

describe("session store", () => {
  let fetchMock: jest.Mock;
  beforeEach(() => {
    jest.useFakeTimers();
    fetchMock = jest.fn();
    globalThis.fetch = fetchMock as unknown as typeof fetch;
    sessionStore.setState({ accessToken: null, user: null, notice: null, restoring: false });
    window.sessionStorage.clear();
    window.localStorage.clear();
  });
  afterEach(() => jest.useRealTimers());

  it("signs in with the refresh token left to the cookie: no token in the page's storage", async () => {
    fetchMock
      .mockResolvedValueOnce(reply(200, { accessToken: "a1", expiresIn: 900 }))
      .mockResolvedValueOnce(reply(200, me));
    await sessionStore.getState().signIn("op@example.com", "secret-password");
    expect(fetchMock.mock.calls[0][1].headers).toMatchObject({ "x-session": "cookie" });
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a1", user: me, notice: null });
    // Storage holds only the hint that this browser signed in; the access token lives in memory.
    expect({ ...window.localStorage }).toEqual({ "aicunet.signedIn": "1" });
    expect(window.sessionStorage.length).toBe(0);
    expect(sessionStore.getState().can("dlq:replay")).toBe(true);
    expect(sessionStore.getState().can("users:admin")).toBe(false);
  });

  it("refreshes silently by the cookie before the access token expires", async () => {
    fetchMock
      .mockResolvedValueOnce(reply(200, { accessToken: "a1", expiresIn: 100 }))
      .mockResolvedValueOnce(reply(200, me))
      .mockResolvedValueOnce(reply(200, { accessToken: "a2", expiresIn: 100 }))
      .mockResolvedValueOnce(reply(200, me));
    await sessionStore.getState().signIn("op@example.com", "secret-password");
    await jest.advanceTimersByTimeAsync(80_000);
    expect(fetchMock.mock.calls[2][0]).toBe("/api/auth/refresh");
    expect(JSON.parse(fetchMock.mock.calls[2][1].body as string)).toEqual({});
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a2", user: me });
  });

  it("keeps the session through a rate-limited or unreachable refresh, retrying after Retry-After", async () => {
    sessionStore.setState({ accessToken: "a1", user: me });
    fetchMock
      .mockResolvedValueOnce(reply(429, { type: "RATE_LIMITED", message: "Too many" }, { "retry-after": "3" }))
      .mockRejectedValueOnce(new TypeError("Failed to fetch"))
      .mockResolvedValueOnce(reply(200, { accessToken: "a2", expiresIn: 900 }))
      .mockResolvedValueOnce(reply(200, me));
    const refreshed = sessionStore.getState().refresh();
    await jest.advanceTimersByTimeAsync(2_900);
    // Still waiting out the 429's Retry-After, still signed in.
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(sessionStore.getState().user).toEqual(me);
    await jest.advanceTimersByTimeAsync(3_000);
    expect(await refreshed).toBe(true);
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a2", user: me, notice: null });
  });

  it("ends the session with a notice when the refresh is refused", async () => {
    sessionStore.setState({ accessToken: "a1", user: me });
    window.localStorage.setItem("aicunet.signedIn", "1");
    fetchMock.mockResolvedValueOnce(reply(401, { type: "TOKEN_REUSED", message: "Refresh token reused" }));
    expect(await sessionStore.getState().refresh()).toBe(false);
    expect(sessionStore.getState()).toMatchObject({
      accessToken: null,
      user: null,
      notice: "Your session has ended. Please sign in again.",
    });
    expect(window.localStorage.length).toBe(0);
  });

  it("restores an opened tab's session from the cookie, and asks nothing of a browser that never signed in", async () => {
    await sessionStore.getState().restore();
    expect(fetchMock).not.toHaveBeenCalled();

    window.localStorage.setItem("aicunet.signedIn", "1");
    fetchMock
      .mockResolvedValueOnce(reply(200, { accessToken: "a2", expiresIn: 900 }))
      .mockResolvedValueOnce(reply(200, me));
    await sessionStore.getState().restore();
    expect(fetchMock.mock.calls[0][0]).toBe("/api/auth/refresh");
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a2", user: me, restoring: false });
  });

  it("shows the sign-in page, without a notice, when an opened tab's cookie is gone", async () => {
    window.localStorage.setItem("aicunet.signedIn", "1");
    fetchMock.mockResolvedValueOnce(reply(401, { type: "INVALID_TOKEN", message: "No session" }));
    await sessionStore.getState().restore();
    expect(sessionStore.getState()).toMatchObject({ user: null, notice: null, restoring: false });
  });

  it("reports wrong credentials without signing in", async () => {
    fetchMock.mockResolvedValueOnce(reply(401, { type: "INVALID_CREDENTIALS", message: "Wrong email or password" }));
    await expect(sessionStore.getState().signIn("op@example.com", "nope")).rejects.toMatchObject({
      status: 401,
      type: "INVALID_CREDENTIALS",
    });
    expect(sessionStore.getState().user).toBeNull();
  });

  it("signs in by changing a password that must be changed, with the current one", async () => {
    fetchMock
      .mockResolvedValueOnce(reply(403, { type: "PASSWORD_CHANGE_REQUIRED", message: "The password must be changed" }))
      .mockResolvedValueOnce(reply(200, { accessToken: "a1", expiresIn: 900 }))
      .mockResolvedValueOnce(reply(200, me));
    await expect(sessionStore.getState().signIn("op@example.com", "generated")).rejects.toMatchObject({
      status: 403,
      type: "PASSWORD_CHANGE_REQUIRED",
    });
    expect(sessionStore.getState().user).toBeNull();
    await sessionStore.getState().changePassword("op@example.com", "generated", "a-new-password");
    expect(fetchMock.mock.calls[1][0]).toBe("/api/auth/password");
    expect(JSON.parse(fetchMock.mock.calls[1][1].body as string)).toEqual({
      email: "op@example.com",
      currentPassword: "generated",
      newPassword: "a-new-password",
    });
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a1", user: me });
  });
});
