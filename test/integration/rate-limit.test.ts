/**
 * Rate limits hold across gateway replicas: two gateway processes share their counters in Redis, so a client that
 * alternates between them gets 429 after the limit counted over both. Behind a trusted proxy each forwarded client
 * has its own count; a forged `X-Forwarded-For` is ignored; with the shared store unreachable the limit still holds,
 * per gateway.
 */
import { login } from "../../support/api";
import {
  dropScopeDatabases,
  type ErrorBody,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  startNodeProcess,
  TEST_ADMIN,
  testNatsUrl,
  testRedisUrl,
  waitFor,
} from "../../support/nodes";
import { freePort } from "../../support/servers";

const scope = isolation();
let nodes: NodeProcess[];
let shared: Record<string, string>;

beforeAll(async () => {
  shared = {
    TRANSPORTER: testNatsUrl(),
    REDIS_URL: testRedisUrl(),
    RATE_LIMIT_AUTH: "5",
    RATE_LIMIT_USER: "3",
    NAMESPACE: scope.namespace,
  };
  nodes = await Promise.all([
    startNodeProcess(nodeEnv(scope, { ...shared, SERVICES: "auth" })),
    startNodeProcess(nodeEnv(scope, { ...shared, SERVICES: "api" })),
    startNodeProcess(nodeEnv(scope, { ...shared, SERVICES: "api" })),
  ]);
});

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
  await dropScopeDatabases(scope.prefix);
});

let gateways: string[];

it("limits each caller across both gateways, whatever address they come from", async () => {
  gateways = nodes.slice(1).map((node) => `http://127.0.0.1:${node.port}`);
  // Each gateway routes to auth once it has discovered the auth node (GET /me is not a rate-limited credential call).
  for (const gateway of gateways) {
    await waitFor(
      async () => ((await fetch(`${gateway}/api/auth/me`)).status === 401 ? true : undefined),
      20_000,
      "auth routes",
    );
  }
  const token = await login(gateways[0]);
  const statuses: number[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const res = await fetch(`${gateways[attempt % 2]}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    statuses.push(res.status);
    if (res.status === 429) expect(await json<ErrorBody>(res)).toMatchObject({ data: { limit: "user" } });
    else await res.body?.cancel();
  }
  expect(statuses).toEqual([200, 200, 200, 429]);
});

it("counts login attempts over both gateways and answers 429 with Retry-After past the limit", async () => {
  const gateways = nodes.slice(1).map((node) => `http://127.0.0.1:${node.port}`);
  // Each gateway routes to auth once it has discovered the auth node (GET /me is not a rate-limited credential call).
  for (const gateway of gateways) {
    await waitFor(
      async () => ((await fetch(`${gateway}/api/auth/me`)).status === 401 ? true : undefined),
      20_000,
      "auth routes",
    );
  }
  const statuses: number[] = [];
  let limited: Response | undefined;
  // Failed sign-ins count, from this address over both gateways; the right one above did not.
  for (let attempt = 0; attempt < 6; attempt++) {
    const res = await fetch(`${gateways[attempt % 2]}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "someone@example.com", password: "not-the-password" }),
    });
    statuses.push(res.status);
    if (res.status === 429) limited ??= res;
    else await res.body?.cancel();
  }
  expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  const retryAfter = Number(limited!.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(await json<ErrorBody>(limited!)).toMatchObject({ code: 429, type: "RATE_LIMITED", data: { limit: "auth" } });
});

/** `count` sign-ins with a wrong password from `forwardedFor` (when given) through `gateway`; their statuses. */
async function wrongLogins(
  gateway: string,
  count: number,
  forwardedFor?: string,
  email = "someone@example.com",
): Promise<number[]> {
  const statuses: number[] = [];
  for (let attempt = 0; attempt < count; attempt++) {
    const res = await fetch(`${gateway}/api/auth/login`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(forwardedFor ? { "x-forwarded-for": forwardedFor } : {}),
      },
      body: JSON.stringify({ email, password: "not-the-password" }),
    });
    statuses.push(res.status);
    await res.body?.cancel();
  }
  return statuses;
}

async function startGateway(env: Record<string, string>): Promise<string> {
  const node = await startNodeProcess(nodeEnv(scope, { ...shared, SERVICES: "api", ...env }));
  nodes.push(node);
  const gateway = `http://127.0.0.1:${node.port}`;
  await waitFor(
    async () => ((await fetch(`${gateway}/api/auth/me`)).status === 401 ? true : undefined),
    20_000,
    "auth routes",
  );
  return gateway;
}

it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
  // 127.0.0.1 is over its login limit since the test above; claiming another address does not help.
  expect(await wrongLogins(gateways[0], 1, "203.0.113.50")).toEqual([429]);
});

it("counts each client behind a trusted proxy on its own, and believes no hop a client wrote itself", async () => {
  const behindProxy = await startGateway({ TRUSTED_PROXIES: "127.0.0.1" });
  // The proxy (this test, at 127.0.0.1) forwards two clients; a client's own forged hop to the left is not believed.
  expect(await wrongLogins(behindProxy, 5, "198.51.100.7, 203.0.113.10")).toEqual([401, 401, 401, 401, 401]);
  expect(await wrongLogins(behindProxy, 1, "203.0.113.10")).toEqual([429]);
  expect(await wrongLogins(behindProxy, 1, "203.0.113.11")).toEqual([401]);
});

it("still limits, per gateway, while the shared store is unreachable, and says so through its logger", async () => {
  const withoutRedis = await startGateway({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  expect(await wrongLogins(withoutRedis, 6)).toEqual([401, 401, 401, 401, 401, 429]);
  const node = nodes.find((candidate) => `http://127.0.0.1:${candidate.port}` === withoutRedis)!;
  expect(node.output()).toContain("Rate limit store unavailable, counting per gateway meanwhile");
  // The Redis client retried all along (since the node started); none of its errors went to stderr past the logger.
  expect(node.output()).not.toContain("[ioredis]");
});

/** A sign-in or registration from `address` (behind the trusted proxy this test plays). */
function credentialsCall(gateway: string, route: string, address: string, body: object): Promise<Response> {
  return fetch(`${gateway}/api/auth/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-forwarded-for": address },
    body: JSON.stringify(body),
  });
}

it("limits failed sign-ins per account from any address, and spares others behind an address that failed", async () => {
  const gateway = await startGateway({ TRUSTED_PROXIES: "127.0.0.1", RATE_LIMIT_LOGIN_ACCOUNT: "3" });
  const victim = { email: "victim@example.com", password: "the-victims-password" };
  const neighbour = { email: "neighbour@example.com", password: "the-neighbours-password" };
  expect((await credentialsCall(gateway, "register", "192.0.2.1", { ...victim, displayName: "Victim" })).status).toBe(
    201,
  );
  // A slow guess spread over three addresses: each address fails once, the account three times.
  for (const address of ["192.0.2.10", "192.0.2.11", "192.0.2.12"]) {
    expect(await wrongLogins(gateway, 1, address, victim.email)).toEqual([401]);
  }
  const locked = await credentialsCall(gateway, "login", "192.0.2.13", victim);
  expect(locked.status).toBe(429);
  expect(await json<ErrorBody>(locked)).toMatchObject({ type: "RATE_LIMITED", data: { limit: "account" } });
  const retryAfter = Number(locked.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThan(60);
  expect(retryAfter).toBeLessThanOrEqual(15 * 60);
  // Someone else behind an address that failed registers and signs in: another's mistakes are not theirs.
  const registered = await credentialsCall(gateway, "register", "192.0.2.10", { ...neighbour, displayName: "N" });
  expect(registered.status).toBe(201);
  expect((await credentialsCall(gateway, "login", "192.0.2.10", neighbour)).status).toBe(200);
});

it("lets a session refresh more often than the credential limit: reloads and tabs must not end it", async () => {
  const gateway = await startGateway({ TRUSTED_PROXIES: "127.0.0.1" });
  const address = "192.0.2.77";
  const signedIn = await credentialsCall(gateway, "login", address, TEST_ADMIN);
  expect(signedIn.status).toBe(200);
  let { refreshToken } = await json<{ refreshToken: string }>(signedIn);
  // Twice the credential limit (RATE_LIMIT_AUTH=5) of refreshes from one address, each with the token the last gave.
  const statuses: number[] = [];
  for (let refresh = 0; refresh < 10; refresh++) {
    const res = await credentialsCall(gateway, "refresh", address, { refreshToken });
    statuses.push(res.status);
    if (res.status === 200) ({ refreshToken } = await json<{ refreshToken: string }>(res));
  }
  expect(statuses).toEqual(Array(10).fill(200));
  // Failed sign-ins from the address are still under it (the right one above did not count).
  expect(await wrongLogins(gateway, 6, address)).toEqual([401, 401, 401, 401, 401, 429]);
});
