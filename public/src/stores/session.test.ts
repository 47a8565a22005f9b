import { sessionStore } from "./session";

interface FakeResponse {
  ok: boolean;
  status: number;
  statusText: string;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

const reply = (status: number, body: unknown): FakeResponse => ({
  ok: status < 400,
  status,
  statusText: String(status),
  headers: { get: () => null },
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
    sessionStore.setState({ accessToken: null, refreshToken: null, user: null, notice: null });
    window.sessionStorage.clear();
  });
  afterEach(() => jest.useRealTimers());

  it("signs in, keeps the access token in memory only, and answers what the user may do", async () => {
    fetchMock
      .mockResolvedValueOnce(reply(200, { accessToken: "a1", refreshToken: "r1", expiresIn: 900 }))
      .mockResolvedValueOnce(reply(200, me));
    await sessionStore.getState().signIn("op@example.com", "secret-password");
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a1", refreshToken: "r1", user: me, notice: null });
    expect(window.localStorage.length).toBe(0);
    // Only the refresh token outlives a reload of the tab, in its sessionStorage.
    expect(Object.values({ ...window.sessionStorage })).toEqual(["r1"]);
    expect(sessionStore.getState().can("dlq:replay")).toBe(true);
    expect(sessionStore.getState().can("users:admin")).toBe(false);
  });

  it("refreshes silently before the access token expires", async () => {
    fetchMock
      .mockResolvedValueOnce(reply(200, { accessToken: "a1", refreshToken: "r1", expiresIn: 100 }))
      .mockResolvedValueOnce(reply(200, me))
      .mockResolvedValueOnce(reply(200, { accessToken: "a2", refreshToken: "r2", expiresIn: 100 }))
      .mockResolvedValueOnce(reply(200, me));
    await sessionStore.getState().signIn("op@example.com", "secret-password");
    await jest.advanceTimersByTimeAsync(80_000);
    expect(fetchMock.mock.calls[2][0]).toBe("/api/auth/refresh");
    expect(JSON.parse(fetchMock.mock.calls[2][1].body as string)).toEqual({ refreshToken: "r1" });
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a2", refreshToken: "r2" });
  });

  it("ends the session with a notice when the refresh is refused", async () => {
    sessionStore.setState({ accessToken: "a1", refreshToken: "used", user: me });
    fetchMock.mockResolvedValueOnce(reply(401, { type: "INVALID_TOKEN", message: "Refresh token revoked" }));
    expect(await sessionStore.getState().refresh()).toBe(false);
    expect(sessionStore.getState()).toMatchObject({
      accessToken: null,
      user: null,
      notice: "Your session has expired. Please sign in again.",
    });
  });

  it("restores a reloaded tab's session from its refresh token", async () => {
    window.sessionStorage.setItem("aicunet.refreshToken", "r1");
    fetchMock
      .mockResolvedValueOnce(reply(200, { accessToken: "a2", refreshToken: "r2", expiresIn: 900 }))
      .mockResolvedValueOnce(reply(200, me));
    await sessionStore.getState().restore();
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a2", user: me, restoring: false });
    expect(window.sessionStorage.getItem("aicunet.refreshToken")).toBe("r2");
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
      .mockResolvedValueOnce(reply(200, { accessToken: "a1", refreshToken: "r1", expiresIn: 900 }))
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
    expect(sessionStore.getState()).toMatchObject({ accessToken: "a1", refreshToken: "r1", user: me });
  });
});
