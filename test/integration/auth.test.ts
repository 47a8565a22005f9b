/**
 * Authentication and authorization through real HTTP against a running gateway, on the real PostgreSQL and NATS:
 * accounts, tokens and their rotation, token verification, RBAC through the gateway and from another node, role
 * changes, signing key rotation, and the OAuth2 client credentials grant with its RFC 6749 errors.
 */
import jwt from "jsonwebtoken";
import { Client } from "pg";
import { ServiceBroker } from "moleculer";
import { validateOpenApi } from "../support/openapi";
import { databaseUrlFor } from "../../lib/database";
import type { Page } from "../../lib/paging";
import { SYSTEM_CALLER } from "../../lib/permissions";
import { BusIdentityMiddleware } from "../../middlewares/bus-identity.middleware";
import {
  decryptPrivateKey,
  encryptPrivateKey,
  generateSigningKey,
  signAccessToken,
  type PublicJwk,
} from "../../lib/signing-keys";
import type { OAuthClient, TokenPair, User } from "../../contracts/auth";
import type { Product } from "../../contracts/products";
import { login } from "../../support/api";
import {
  dropScopeDatabases,
  type ErrorBody,
  isolation,
  json,
  TEST_ADMIN,
  TEST_KEY_SECRET,
  testConfig,
  testNatsUrl,
  waitFor,
} from "../../support/nodes";
import { freePort } from "../../support/servers";
import { startInProcessNode } from "../support/nodes";

const scope = isolation();
let node: ServiceBroker;
let otherNode: ServiceBroker;
let authDb: Client;
let base: string;
let adminToken: string;

const call = (method: string, path: string, { token, body }: { token?: string; body?: unknown } = {}) =>
  fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function register(email: string, password = "a-long-enough-password") {
  const res = await call("POST", "/api/auth/register", { body: { email, password, displayName: email.split("@")[0] } });
  expect(res.status).toBe(201);
  return json<User>(res);
}

async function tokensFor(email: string, password = "a-long-enough-password"): Promise<TokenPair> {
  const res = await call("POST", "/api/auth/login", { body: { email, password } });
  expect(res.status).toBe(200);
  return json<TokenPair>(res);
}

/** The signing key the auth service uses now, read from its database as only a holder of AUTH_KEY_SECRET can. */
async function currentKey() {
  const { rows } = await authDb.query<{ kid: string; private_key: string }>(
    "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
  );
  return { kid: rows[0].kid, privateKeyPem: decryptPrivateKey(rows[0].private_key, TEST_KEY_SECRET) };
}

beforeAll(async () => {
  const port = await freePort();
  const cfg = testConfig(scope, { SERVICES: "api,auth,products", PORT: String(port), TRANSPORTER: testNatsUrl() });
  node = await startInProcessNode(cfg);
  base = `http://127.0.0.1:${port}`;
  adminToken = await login(base);
  authDb = new Client({ connectionString: databaseUrlFor("auth", cfg) });
  await authDb.connect();
  // Another node of ours (it signs the callers it sends, as every node does); a rogue one is in bus-trust.test.ts.
  otherNode = new ServiceBroker({
    logger: false,
    namespace: scope.namespace,
    transporter: { type: "NATS", options: { url: testNatsUrl() } },
    nodeID: "other",
    middlewares: [BusIdentityMiddleware(cfg)],
  });
  await otherNode.start();
  await otherNode.waitForServices(["auth"], 10_000);
});

afterAll(async () => {
  await otherNode?.stop();
  await authDb?.end();
  await node?.stop();
  await dropScopeDatabases(scope.prefix);
});

describe("accounts and sessions", () => {
  it("registers a customer, refuses a duplicate email and bad input, and never returns the password hash", async () => {
    const user = await register("ada@example.com");
    expect(user).toMatchObject({ email: "ada@example.com", roles: ["customer"], status: "active" });
    expect(JSON.stringify(user)).not.toMatch(/password|scrypt/);
    const duplicate = await call("POST", "/api/auth/register", {
      body: { email: "ADA@example.com", password: "another-long-password", displayName: "Ada" },
    });
    expect(duplicate.status).toBe(409);
    const bad = await call("POST", "/api/auth/register", {
      body: { email: "not-an-email", password: "short", displayName: "" },
    });
    expect(bad.status).toBe(422);
    const fields = (await json<ErrorBody>(bad)).data as { field: string }[];
    expect(fields.map((problem) => problem.field).sort()).toEqual(["displayName", "email", "password"]);
  });

  it("logs in with a bearer pair, and answers a wrong password and an unknown email alike", async () => {
    await register("grace@example.com");
    const tokens = await tokensFor("grace@example.com");
    expect(tokens).toMatchObject({ tokenType: "Bearer", expiresIn: 900 });
    const me = await call("GET", "/api/auth/me", { token: tokens.accessToken });
    expect(await json<User>(me)).toMatchObject({ email: "grace@example.com" });

    const wrong = await call("POST", "/api/auth/login", {
      body: { email: "grace@example.com", password: "wrong-password-123" },
    });
    const unknown = await call("POST", "/api/auth/login", {
      body: { email: "nobody@example.com", password: "wrong-password-123" },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(await json<ErrorBody>(wrong)).toEqual(await json<ErrorBody>(unknown));
    expect((await call("GET", "/api/auth/me")).status).toBe(401);
  });

  it("rotates refresh tokens, and a reused one revokes the whole session", async () => {
    await register("rotate@example.com");
    const first = await tokensFor("rotate@example.com");
    const second = await json<TokenPair>(
      await call("POST", "/api/auth/refresh", { body: { refreshToken: first.refreshToken } }),
    );
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect((await call("GET", "/api/auth/me", { token: second.accessToken })).status).toBe(200);

    const reuse = await call("POST", "/api/auth/refresh", { body: { refreshToken: first.refreshToken } });
    expect(reuse.status).toBe(401);
    expect((await json<ErrorBody>(reuse)).type).toBe("TOKEN_REUSED");
    const revoked = await call("POST", "/api/auth/refresh", { body: { refreshToken: second.refreshToken } });
    expect(revoked.status).toBe(401);
  });

  it("lets one of many concurrent refreshes with one token win, and the detected reuse ends the winner's successor", async () => {
    await register("race@example.com");
    for (let round = 0; round < 6; round++) {
      const { refreshToken } = await tokensFor("race@example.com");
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => call("POST", "/api/auth/refresh", { body: { refreshToken } })),
      );
      const statuses = answers.map((res) => res.status);
      expect(statuses.filter((status) => status === 200)).toHaveLength(1);
      const bodies = await Promise.all(answers.map((res) => res.json() as Promise<TokenPair & ErrorBody>));
      const winner = bodies[statuses.indexOf(200)];
      expect(bodies.filter((body) => body.type === "TOKEN_REUSED")).toHaveLength(7);
      const successor = await call("POST", "/api/auth/refresh", { body: { refreshToken: winner.refreshToken } });
      expect(successor.status).toBe(401);
    }
  });

  it("answers login and refresh with Cache-Control: no-store", async () => {
    await register("nostore@example.com");
    const login = await call("POST", "/api/auth/login", {
      body: { email: "nostore@example.com", password: "a-long-enough-password" },
    });
    expect(login.headers.get("cache-control")).toBe("no-store");
    const { refreshToken } = await json<TokenPair>(login);
    const refreshed = await call("POST", "/api/auth/refresh", { body: { refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.headers.get("cache-control")).toBe("no-store");
  });

  it("changes a password with the current one: new tokens, the old password and the other sessions end", async () => {
    await register("changer@example.com");
    const other = await tokensFor("changer@example.com");
    const wrong = await call("POST", "/api/auth/password", {
      body: { email: "changer@example.com", currentPassword: "not-the-password", newPassword: "a-brand-new-secret" },
    });
    expect(wrong.status).toBe(401);
    expect(await json<ErrorBody>(wrong)).toMatchObject({ type: "INVALID_CREDENTIALS" });
    const weak = await call("POST", "/api/auth/password", {
      body: { email: "changer@example.com", currentPassword: "a-long-enough-password", newPassword: " ".repeat(10) },
    });
    expect(weak.status).toBe(422);
    expect((await json<ErrorBody>(weak)).data).toMatchObject([{ field: "newPassword", type: "passwordWeak" }]);

    const changed = await call("POST", "/api/auth/password", {
      body: {
        email: "changer@example.com",
        currentPassword: "a-long-enough-password",
        newPassword: "a-brand-new-secret",
      },
    });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("cache-control")).toBe("no-store");
    const fresh = await json<TokenPair>(changed);
    expect((await call("GET", "/api/auth/me", { token: fresh.accessToken })).status).toBe(200);
    expect(
      (
        await call("POST", "/api/auth/login", {
          body: { email: "changer@example.com", password: "a-long-enough-password" },
        })
      ).status,
    ).toBe(401);
    await tokensFor("changer@example.com", "a-brand-new-secret");
    // The session from before the change: its refresh token is revoked and its access token refused.
    expect((await call("POST", "/api/auth/refresh", { body: { refreshToken: other.refreshToken } })).status).toBe(401);
    await waitFor(
      async () => ((await call("GET", "/api/auth/me", { token: other.accessToken })).status === 401 ? true : undefined),
      5000,
      "the old access token to be refused",
    );
  });

  it("logs out: the refresh token stops working", async () => {
    await register("leave@example.com");
    const tokens = await tokensFor("leave@example.com");
    expect((await call("POST", "/api/auth/logout", { body: { refreshToken: tokens.refreshToken } })).status).toBe(204);
    expect((await call("POST", "/api/auth/refresh", { body: { refreshToken: tokens.refreshToken } })).status).toBe(401);
  });
});

describe("cookie sessions (the web console)", () => {
  const cookieCall = (path: string, body: unknown, cookie?: string) =>
    fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-session": "cookie", ...(cookie ? { cookie } : {}) },
      body: JSON.stringify(body),
    });
  /** The refresh cookie a response sets, as the browser would send it back (`name=value`), and its attributes. */
  const cookieOf = (res: Response) => {
    const [pair, ...attributes] = (res.headers.get("set-cookie") ?? "").split(";").map((part) => part.trim());
    return { pair, attributes };
  };

  it("keeps the refresh token out of the body, in an HttpOnly, Secure, SameSite=Strict cookie for the auth path", async () => {
    await register("cookie@example.com");
    const signedIn = await cookieCall("/api/auth/login", {
      email: "cookie@example.com",
      password: "a-long-enough-password",
    });
    expect(signedIn.status).toBe(200);
    const body = await json<Record<string, unknown>>(signedIn);
    expect(Object.keys(body).sort()).toEqual(["accessToken", "expiresIn", "tokenType"]);
    const { pair, attributes } = cookieOf(signedIn);
    expect(pair).toMatch(/^aicunet_refresh=[A-Za-z0-9_-]{43}$/);
    expect(attributes).toEqual(
      expect.arrayContaining(["Path=/api/auth", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=2592000"]),
    );

    // The cookie stands for the token: a refresh rotates it, and the spent one is refused (reuse ends the family).
    const refreshed = await cookieCall("/api/auth/refresh", {}, pair);
    expect(refreshed.status).toBe(200);
    expect(await json<Record<string, unknown>>(refreshed)).not.toHaveProperty("refreshToken");
    const next = cookieOf(refreshed).pair;
    expect(next).not.toBe(pair);
    const reused = await cookieCall("/api/auth/refresh", {}, pair);
    expect(reused.status).toBe(401);
    expect(await json<ErrorBody>(reused)).toMatchObject({ type: "TOKEN_REUSED" });
  });

  it("signs out by the cookie and removes it; a browser without one is told it holds no session", async () => {
    const signedIn = await cookieCall("/api/auth/login", {
      email: "cookie@example.com",
      password: "a-long-enough-password",
    });
    const { pair } = cookieOf(signedIn);
    const signedOut = await cookieCall("/api/auth/logout", {}, pair);
    expect(signedOut.status).toBe(204);
    expect(cookieOf(signedOut).pair).toBe("aicunet_refresh=");
    expect(cookieOf(signedOut).attributes).toContain("Max-Age=0");
    expect((await cookieCall("/api/auth/refresh", {}, pair)).status).toBe(401);

    const none = await cookieCall("/api/auth/refresh", {});
    expect(none.status).toBe(401);
    expect(await json<ErrorBody>(none)).toMatchObject({ type: "INVALID_TOKEN" });
    // A malformed cookie is no token either; a client that keeps its token sends it in the body as before.
    expect((await cookieCall("/api/auth/refresh", {}, "aicunet_refresh=bad%00value")).status).toBe(401);
  });
});

describe("access token verification", () => {
  const me = (token: string) => call("GET", "/api/auth/me", { token });
  const adminClaims = async () => {
    const { rows } = await authDb.query<{ id: string }>("SELECT id FROM users WHERE 'admin' = ANY(roles) LIMIT 1");
    return { sub: rows[0].id, typ: "user" as const, roles: ["admin"] };
  };

  it.each([
    [
      "an expired token",
      async () =>
        signAccessToken(await adminClaims(), await currentKey(), {
          issuer: "aicunet",
          audience: "aicunet-api",
          ttlSeconds: -5,
        }),
    ],
    [
      "a token for another audience",
      async () =>
        signAccessToken(await adminClaims(), await currentKey(), {
          issuer: "aicunet",
          audience: "elsewhere",
          ttlSeconds: 60,
        }),
    ],
    [
      "a token from another issuer",
      async () =>
        signAccessToken(await adminClaims(), await currentKey(), {
          issuer: "evil",
          audience: "aicunet-api",
          ttlSeconds: 60,
        }),
    ],
    [
      "a token signed by another key under a known kid",
      async () => {
        const { kid } = await currentKey();
        return signAccessToken(
          await adminClaims(),
          { ...generateSigningKey(), kid },
          { issuer: "aicunet", audience: "aicunet-api", ttlSeconds: 60 },
        );
      },
    ],
    [
      "a token with alg none",
      async () => {
        const { kid } = await currentKey();
        return jwt.sign({ ...(await adminClaims()), iss: "aicunet", aud: "aicunet-api" }, "", {
          algorithm: "none",
          keyid: kid,
        });
      },
    ],
    [
      "a token with an unknown kid",
      async () =>
        signAccessToken(await adminClaims(), generateSigningKey(), {
          issuer: "aicunet",
          audience: "aicunet-api",
          ttlSeconds: 60,
        }),
    ],
    [
      "a token without exp",
      async () => {
        const key = await currentKey();
        return jwt.sign({ ...(await adminClaims()) }, key.privateKeyPem, {
          algorithm: "ES256",
          keyid: key.kid,
          issuer: "aicunet",
          audience: "aicunet-api",
        });
      },
    ],
    ["garbage", async () => "not.a.token"],
  ])("answers 401 INVALID_TOKEN for %s", async (_case, makeToken) => {
    const res = await me(await makeToken());
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await json<ErrorBody>(res)).toMatchObject({ code: 401, type: "INVALID_TOKEN" });
  });

  it("accepts a token signed with the current key (the forgeries above differ only in what they break)", async () => {
    const token = signAccessToken(await adminClaims(), await currentKey(), {
      issuer: "aicunet",
      audience: "aicunet-api",
      ttlSeconds: 60,
    });
    expect((await me(token)).status).toBe(200);
  });

  it("rotates the signing key: old tokens keep verifying, new ones carry the new kid", async () => {
    const before = await json<{ keys: PublicJwk[] }>(await call("GET", "/.well-known/jwks.json"));
    const rotated = await call("POST", "/api/auth/keys/rotate", { token: adminToken });
    expect(rotated.status).toBe(200);
    const { kid } = await json<{ kid: string }>(rotated);
    const after = await json<{ keys: PublicJwk[] }>(await call("GET", "/.well-known/jwks.json"));
    expect(after.keys.map((key) => key.kid)).toEqual([kid, ...before.keys.map((key) => key.kid)]);
    expect(after.keys.every((key) => key.alg === "ES256" && !("d" in key))).toBe(true);
    expect((await me(adminToken)).status).toBe(200);
    const fresh = await login(base);
    expect(jwt.decode(fresh, { complete: true })?.header.kid).toBe(kid);
    expect((await me(fresh)).status).toBe(200);
    adminToken = fresh;
  });
});

describe("RBAC", () => {
  it("answers 403 to a customer calling an admin action, and 200 to an admin", async () => {
    await register("cust@example.com");
    const { accessToken } = await tokensFor("cust@example.com");
    const denied = await call("GET", "/api/auth/users", { token: accessToken });
    expect(denied.status).toBe(403);
    expect(await json<ErrorBody>(denied)).toMatchObject({ type: "FORBIDDEN", data: { action: "auth.users.list" } });
    expect((await call("GET", "/api/auth/users", { token: adminToken })).status).toBe(200);
  });

  it("lets a customer read their own account but not another's, which looks like it does not exist", async () => {
    const own = await register("owner@example.com");
    const other = await register("neighbour@example.com");
    const { accessToken } = await tokensFor("owner@example.com");
    const mine = await call("GET", `/api/auth/users/${own.id}`, { token: accessToken });
    expect(mine.status).toBe(200);
    expect(await json<User>(mine)).toMatchObject({ email: "owner@example.com" });
    const theirs = await call("GET", `/api/auth/users/${other.id}`, { token: accessToken });
    expect(theirs.status).toBe(404);
    expect((await call("GET", `/api/auth/users/${other.id}`, { token: adminToken })).status).toBe(200);
  });

  it("checks a call made from another node the same way, and fails closed without an identity", async () => {
    const customer = {
      type: "user",
      id: "00000000-0000-4000-8000-000000000001",
      roles: ["customer"],
      permissions: ["orders:create"],
    };
    await expect(otherNode.call("auth.users.list", {}, { meta: { caller: customer } })).rejects.toMatchObject({
      code: 403,
      type: "FORBIDDEN",
    });
    await expect(otherNode.call("auth.users.list")).rejects.toMatchObject({ code: 401 });
    await expect(otherNode.call("auth.rolePermissions", {}, { meta: { caller: customer } })).rejects.toMatchObject({
      code: 403,
    });
    const users = await otherNode.call<Page<User>, Record<string, never>>(
      "auth.users.list",
      {},
      { meta: { caller: SYSTEM_CALLER } },
    );
    expect(users.rows.length).toBeGreaterThan(0);
  });

  it("applies role changes at the next refresh, and a disabled user can neither refresh nor log in", async () => {
    const user = await register("promote@example.com");
    const tokens = await tokensFor("promote@example.com");
    const update = await call("PATCH", `/api/auth/users/${user.id}`, {
      token: adminToken,
      body: { roles: ["operator"] },
    });
    expect(update.status).toBe(200);
    // The change ends the token from before it (refused once the gateway has the revocation); a refresh gets the roles.
    expect([401, 403]).toContain((await call("GET", "/api/auth/users", { token: tokens.accessToken })).status);
    const refreshed = await json<TokenPair>(
      await call("POST", "/api/auth/refresh", { body: { refreshToken: tokens.refreshToken } }),
    );
    expect(jwt.decode(refreshed.accessToken)).toMatchObject({ roles: ["operator"] });

    await call("PATCH", `/api/auth/users/${user.id}`, { token: adminToken, body: { status: "disabled" } });
    expect((await call("POST", "/api/auth/refresh", { body: { refreshToken: refreshed.refreshToken } })).status).toBe(
      401,
    );
    const relogin = await call("POST", "/api/auth/login", {
      body: { email: "promote@example.com", password: "a-long-enough-password" },
    });
    expect(relogin.status).toBe(401);
  });

  it("lets admins edit a role's permissions, and gateways apply the change at once", async () => {
    await register("buyer@example.com");
    const { accessToken } = await tokensFor("buyer@example.com");
    const product = { sku: "ROLE-1", name: "Granted", price: { amount: 1, currency: "EUR" } };
    expect((await call("POST", "/api/products", { token: accessToken, body: product })).status).toBe(403);
    const { rows: roles } = await json<Page<{ name: string; permissions: string[] }>>(
      await call("GET", "/api/auth/roles", { token: adminToken }),
    );
    const customerRole = roles.find((role) => role.name === "customer")!;
    const put = await call("PUT", "/api/auth/roles/customer", {
      token: adminToken,
      body: { description: "test", permissions: [...customerRole.permissions, "products:write"] },
    });
    expect(put.status).toBe(200);
    // Through the auth.roles.changed broadcast, well before the gateway's roles table would expire (30 s).
    await waitFor(
      async () =>
        (await call("POST", "/api/products", { token: accessToken, body: product })).status === 201 ? true : undefined,
      5000,
      "the role change to reach the gateway",
    );
    await call("PUT", "/api/auth/roles/customer", {
      token: adminToken,
      body: { permissions: customerRole.permissions },
    });
  });
});

describe("revocation before expiry", () => {
  const refused = (token: string, path = "/api/auth/me") =>
    waitFor(
      async () => {
        const res = await call("GET", path, { token });
        if (res.status !== 401) return undefined;
        return json<ErrorBody>(res);
      },
      5000,
      `${path} to refuse the token`,
    );

  it("refuses a disabled user's access token within seconds", async () => {
    const user = await register("revoked@example.com");
    const { accessToken } = await tokensFor("revoked@example.com");
    expect((await call("GET", "/api/auth/me", { token: accessToken })).status).toBe(200);
    await call("PATCH", `/api/auth/users/${user.id}`, { token: adminToken, body: { status: "disabled" } });
    expect(await refused(accessToken)).toMatchObject({ type: "INVALID_TOKEN", data: { reason: "revoked" } });
  });

  it("takes a demoted operator's rights within seconds; a refresh then carries the new roles", async () => {
    const created = await call("POST", "/api/auth/users", {
      token: adminToken,
      body: {
        email: "demoted@example.com",
        password: "a-long-enough-password",
        displayName: "Demoted",
        roles: ["operator"],
      },
    });
    const operator = await json<User>(created);
    const tokens = await tokensFor("demoted@example.com");
    const product = (sku: string) => ({ sku, name: sku, price: { amount: 1, currency: "EUR" } });
    const write = (token: string, sku: string) => call("POST", "/api/products", { token, body: product(sku) });
    expect((await write(tokens.accessToken, "DEMOTE-1")).status).toBe(201);
    await call("PATCH", `/api/auth/users/${operator.id}`, { token: adminToken, body: { roles: ["customer"] } });
    await waitFor(
      async () => ((await write(tokens.accessToken, "DEMOTE-2")).status === 401 ? true : undefined),
      5000,
      "the demoted operator's token to be refused",
    );
    const refreshed = await json<TokenPair>(
      await call("POST", "/api/auth/refresh", { body: { refreshToken: tokens.refreshToken } }),
    );
    expect((await write(refreshed.accessToken, "DEMOTE-3")).status).toBe(403);
  });

  it("refuses a disabled OAuth client's access token within seconds", async () => {
    const created = await json<OAuthClient & { clientSecret: string }>(
      await call("POST", "/api/auth/clients", {
        token: adminToken,
        body: { name: "revoked", scopes: ["products:write"] },
      }),
    );
    const issued = await fetch(`${base}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: created.clientId,
        client_secret: created.clientSecret,
      }).toString(),
    });
    const { access_token: token } = await json<{ access_token: string }>(issued);
    const write = (sku: string) =>
      call("POST", "/api/products", { token, body: { sku, name: sku, price: { amount: 1, currency: "EUR" } } });
    expect((await write("CLIENT-REVOKE-1")).status).toBe(201);
    await call("PATCH", `/api/auth/clients/${created.clientId}`, { token: adminToken, body: { status: "disabled" } });
    await waitFor(
      async () => ((await write("CLIENT-REVOKE-2")).status === 401 ? true : undefined),
      5000,
      "the disabled client's token to be refused",
    );
  });

  it("is known to a gateway that starts after the revocation", async () => {
    const user = await register("before-start@example.com");
    const { accessToken } = await tokensFor("before-start@example.com");
    await call("PATCH", `/api/auth/users/${user.id}`, { token: adminToken, body: { status: "disabled" } });
    const port = await freePort();
    const late = await startInProcessNode(
      testConfig(scope, { SERVICES: "api", PORT: String(port), TRANSPORTER: testNatsUrl(), NODE_ID: "late-gateway" }),
    );
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/auth/me`, {
        headers: { authorization: `Bearer ${accessToken}` },
      });
      expect(res.status).toBe(401);
      expect(await json<ErrorBody>(res)).toMatchObject({ data: { reason: "revoked" } });
    } finally {
      await late.stop();
    }
  });
});

describe("OAuth2 client credentials", () => {
  let client: OAuthClient & { clientSecret: string };
  const token = (form: Record<string, string>, basic?: string) =>
    fetch(`${base}/oauth/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(basic ? { authorization: `Basic ${Buffer.from(basic).toString("base64")}` } : {}),
      },
      body: new URLSearchParams(form).toString(),
    });

  beforeAll(async () => {
    const res = await call("POST", "/api/auth/clients", {
      token: adminToken,
      body: { name: "importer", scopes: ["products:write"] },
    });
    expect(res.status).toBe(201);
    client = await json<OAuthClient & { clientSecret: string }>(res);
  });

  it("issues a token to a client authenticated with HTTP Basic, usable on the API within its scope", async () => {
    const res = await token({ grant_type: "client_credentials" }, `${client.clientId}:${client.clientSecret}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await json<{ access_token: string; token_type: string; expires_in: number; scope: string }>(res);
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 900, scope: "products:write" });
    const created = await call("POST", "/api/products", {
      token: body.access_token,
      body: { sku: "OAUTH-1", name: "Imported", price: { amount: 5, currency: "EUR" } },
    });
    expect(created.status).toBe(201);
    expect((await json<Product>(created)).sku).toBe("OAUTH-1");
    expect((await call("GET", "/api/auth/users", { token: body.access_token })).status).toBe(403);
  });

  it("accepts credentials in the form body too", async () => {
    const res = await token({
      grant_type: "client_credentials",
      client_id: client.clientId,
      client_secret: client.clientSecret,
      scope: "products:write",
    });
    expect(res.status).toBe(200);
  });

  it.each([
    ["no grant_type", {}, undefined, 400, "invalid_request"],
    [
      "the password grant",
      { grant_type: "password", username: "a", password: "b" },
      undefined,
      400,
      "unsupported_grant_type",
    ],
    ["no client authentication", { grant_type: "client_credentials" }, undefined, 401, "invalid_client"],
    ["a wrong secret", { grant_type: "client_credentials" }, "WRONG", 401, "invalid_client"],
    [
      "a scope the client lacks",
      { grant_type: "client_credentials", scope: "users:admin" },
      "RIGHT",
      400,
      "invalid_scope",
    ],
  ])("answers %s with the RFC 6749 error", async (_case, form, secret, status, error) => {
    const basic =
      secret === undefined ? undefined : `${client.clientId}:${secret === "RIGHT" ? client.clientSecret : "wrong"}`;
    const res = await token(form as Record<string, string>, basic);
    expect(res.status).toBe(status);
    const body = await json<{ error: string; error_description: string }>(res);
    expect(body.error).toBe(error);
    expect(body.error_description.length).toBeGreaterThan(0);
    if (status === 401 && basic) expect(res.headers.get("www-authenticate")).toMatch(/^Basic/);
  });

  it("answers Basic credentials that are not form-urlencoded with invalid_client, not 500", async () => {
    const res = await token({ grant_type: "client_credentials" }, "%E0%A4%A:x");
    expect(res.status).toBe(401);
    expect(await json<{ error: string }>(res)).toMatchObject({ error: "invalid_client" });
  });

  it("rotates a client's secret and disables clients", async () => {
    const rotated = await json<{ clientSecret: string }>(
      await call("POST", `/api/auth/clients/${client.clientId}/rotate-secret`, { token: adminToken }),
    );
    expect(
      (await token({ grant_type: "client_credentials" }, `${client.clientId}:${client.clientSecret}`)).status,
    ).toBe(401);
    expect(
      (await token({ grant_type: "client_credentials" }, `${client.clientId}:${rotated.clientSecret}`)).status,
    ).toBe(200);
    await call("PATCH", `/api/auth/clients/${client.clientId}`, { token: adminToken, body: { status: "disabled" } });
    const disabled = await token({ grant_type: "client_credentials" }, `${client.clientId}:${rotated.clientSecret}`);
    expect(disabled.status).toBe(401);
    const { rows: listed } = await json<Page<OAuthClient>>(
      await call("GET", "/api/auth/clients", { token: adminToken }),
    );
    expect(listed.find((entry) => entry.clientId === client.clientId)).toMatchObject({ status: "disabled" });
    expect(JSON.stringify(listed)).not.toMatch(/secret/i);
  });
});

describe("OpenAPI document", () => {
  it("is generated from the served routes and valid against the OpenAPI 3.1 schema", async () => {
    const res = await call("GET", "/api/openapi.json");
    expect(res.status).toBe(200);
    const doc = await json<{
      openapi: string;
      paths: Record<string, Record<string, Record<string, unknown>>>;
      components: { securitySchemes: Record<string, unknown> };
    }>(res);
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["bearerAuth", "clientCredentials"]);
    const createProduct = doc.paths["/api/products"].post;
    expect(createProduct).toMatchObject({
      operationId: "products.create",
      security: [{ bearerAuth: [] }, { clientCredentials: ["products:write"] }],
      requestBody: { content: { "application/json": { schema: { required: ["sku", "name", "price"] } } } },
    });
    expect(doc.paths["/api/products/{id}"].get).toMatchObject({
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } }],
      security: [],
    });
    expect(doc.paths["/api/auth/users"].get).toMatchObject({ "x-permissions": ["users:admin"] });
    // Each operation's success status is the one the action answers with.
    const successOf = (path: string, method: string) =>
      Object.keys(doc.paths[path][method].responses as object).filter((code) => /^2/.test(code));
    expect(successOf("/api/products", "post")).toEqual(["201"]);
    expect(successOf("/api/products/{id}", "delete")).toEqual(["204"]);
    expect(successOf("/api/auth/login", "post")).toEqual(["200"]);
    expect(successOf("/api/auth/logout", "post")).toEqual(["204"]);
    // The token endpoint takes a form (RFC 6749), not JSON.
    expect(Object.keys((doc.paths["/oauth/token"].post.requestBody as { content: object }).content)).toEqual([
      "application/x-www-form-urlencoded",
    ]);

    expect(await validateOpenApi(doc)).toEqual({ valid: true });
  });

  it("has a docs page served by the gateway itself", async () => {
    const page = await call("GET", "/docs/");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("/docs/swagger-ui-bundle.js");
    expect((await call("GET", "/docs/swagger-ui-bundle.js")).headers.get("content-type")).toMatch(/javascript/);
  });
});

describe("gateway hygiene", () => {
  it("sends security headers and refuses oversized bodies", async () => {
    const res = await call("GET", "/api/products");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    const huge = await call("POST", "/api/products", {
      token: adminToken,
      body: { sku: "BIG", name: "x".repeat(2_000_000) },
    });
    expect(huge.status).toBe(413);
  });
});

describe("account input", () => {
  const registration = (body: Record<string, string>) =>
    call("POST", "/api/auth/register", {
      body: { email: "input@example.com", password: "a-long-enough-password", displayName: "Input", ...body },
    });

  it.each([
    ["a right-to-left override", "\u202Egnp.exe"],
    ["a control character", "bell\u0007"],
    ["a zero-width space", "ad\u200Bmin"],
    ["a bidirectional isolate", "\u2067admin\u2069"],
    ["a stack of combining marks", "Z\u0301\u0302\u0303\u0304\u0305\u0306"],
  ])("refuses a display name with %s", async (_case, displayName) => {
    const res = await registration({ displayName });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).data).toMatchObject([{ field: "displayName", type: "displayNameCharacters" }]);
  });

  it.each([
    ["a Cyrillic look-alike", "\u0430dmin@example.com"],
    ["a Greek look-alike domain", "ada@ex\u03B1mple.com"],
    ["a non-ASCII local part", "j\u00FCrgen@example.com"],
  ])("refuses an e-mail address with %s", async (_case, email) => {
    const res = await registration({ email });
    expect(res.status).toBe(422);
    expect((await json<ErrorBody>(res)).data).toMatchObject([{ field: "email", type: "emailCharacters" }]);
  });

  it("stores an address in its normal form: full-width letters are the ASCII account", async () => {
    const res = await registration({ email: "\uFF26\uFF35\uFF2C\uFF2C@example.com" });
    expect(res.status).toBe(201);
    expect(await json<User>(res)).toMatchObject({ email: "full@example.com" });
    await tokensFor("full@example.com");
    expect((await registration({ email: "FULL@example.com" })).status).toBe(409);
  });

  it.each([
    ["ten spaces", " ".repeat(10)],
    ["one repeated character", "aaaaaaaaaaaa"],
    ["four distinct characters", "abcdabcdabcd"],
  ])("refuses a password of %s", async (_case, password) => {
    const res = await registration({ password });
    expect(res.status).toBe(422);
    const body = await json<ErrorBody>(res);
    expect(body.data).toMatchObject([{ field: "password", type: "passwordWeak" }]);
    expect(JSON.stringify(body)).not.toContain(password);
  });
});

describe("signing keys and the JWKS", () => {
  it("answers the JWKS from a cache, not a database query per request", async () => {
    const jwks = async () =>
      (await json<{ keys: PublicJwk[] }>(await call("GET", "/.well-known/jwks.json"))).keys.map((key) => key.kid);
    await jwks();
    const stray = generateSigningKey();
    await authDb.query(
      `INSERT INTO signing_keys (kid, algorithm, private_key, public_jwk, retired_at) VALUES ($1, 'ES256', $2, $3, now())`,
      [stray.kid, encryptPrivateKey(stray.privateKeyPem, TEST_KEY_SECRET), JSON.stringify(stray.publicJwk)],
    );
    try {
      expect(await jwks()).not.toContain(stray.kid);
    } finally {
      await authDb.query("DELETE FROM signing_keys WHERE kid = $1", [stray.kid]);
    }
  });

  it("is not ready, and says why, while AUTH_KEY_SECRET cannot open the stored signing key", async () => {
    const { kid } = await currentKey();
    const foreign = generateSigningKey();
    await authDb.query(
      `WITH retired AS (UPDATE signing_keys SET retired_at = now() WHERE kid = $1)
       INSERT INTO signing_keys (kid, algorithm, private_key, public_jwk) VALUES ($2, 'ES256', $3, $4)`,
      [kid, foreign.kid, encryptPrivateKey(foreign.privateKeyPem, "another-secret"), JSON.stringify(foreign.publicJwk)],
    );
    try {
      const ready = await call("GET", "/health/ready");
      expect(ready.status).toBe(503);
      const report = await ready.text();
      expect(report).toContain("auth:signing-key");
      expect(report).toContain(`AUTH_KEY_SECRET does not open signing key ${foreign.kid}`);
      const refused = await call("POST", "/api/auth/login", { body: TEST_ADMIN });
      expect(refused.status).toBe(503);
      expect(await json<ErrorBody>(refused)).toMatchObject({ type: "SIGNING_KEY_UNAVAILABLE" });
    } finally {
      await authDb.query("DELETE FROM signing_keys WHERE kid = $1", [foreign.kid]);
      await authDb.query("UPDATE signing_keys SET retired_at = NULL WHERE kid = $1", [kid]);
    }
    expect((await call("GET", "/health/ready")).status).toBe(200);
  });
});

describe("on a node of its own", () => {
  const adminScope = isolation();
  let adminNode: ServiceBroker;
  let adminBase: string;
  const patch = (token: string, id: string, body: unknown) =>
    fetch(`${adminBase}/api/auth/users/${id}`, {
      method: "PATCH",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    const port = await freePort();
    adminNode = await startInProcessNode(
      testConfig(adminScope, { SERVICES: "api,auth", PORT: String(port), RATE_LIMIT_PROBE: "4" }),
    );
    adminBase = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await adminNode?.stop();
    await dropScopeDatabases(adminScope.prefix);
  });

  it("limits the JWKS and health probes per client address", async () => {
    const statuses = [];
    for (const path of ["/.well-known/jwks.json", "/health/ready", "/.well-known/jwks.json", "/health/live"]) {
      statuses.push((await fetch(`${adminBase}${path}`)).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200]);
    const limited = await fetch(`${adminBase}/.well-known/jwks.json`);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await fetch(`${adminBase}/health/ready`)).status).toBe(429);
  });

  it("keeps the last admin: it cannot be disabled or demoted, not even by itself; two concurrent demotions do not both pass", async () => {
    const token = await login(adminBase);
    const { rows: users } = await json<Page<User>>(
      await fetch(`${adminBase}/api/auth/users`, { headers: { authorization: `Bearer ${token}` } }),
    );
    const first = users.find((user) => user.roles.includes("admin"))!;
    for (const change of [{ status: "disabled" }, { roles: ["customer"] }]) {
      const res = await patch(token, first.id, change);
      expect(res.status).toBe(409);
      expect(await json<ErrorBody>(res)).toMatchObject({ type: "LAST_ADMIN" });
    }

    const created = await fetch(`${adminBase}/api/auth/users`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({
        email: "second-admin@example.com",
        password: "a-long-enough-password",
        displayName: "Second",
        roles: ["admin"],
      }),
    });
    const second = await json<User>(created);
    const outcomes = await Promise.all([
      patch(token, first.id, { roles: ["customer"] }),
      patch(token, second.id, { status: "disabled" }),
    ]);
    expect(outcomes.map((res) => res.status).sort()).toEqual([200, 409]);
    const { rows: after } = await json<Page<User>>(
      await fetch(`${adminBase}/api/auth/users`, {
        headers: {
          authorization: `Bearer ${await login(adminBase, outcomes[0].status === 200 ? { email: "second-admin@example.com", password: "a-long-enough-password" } : TEST_ADMIN)}`,
        },
      }),
    );
    expect(after.filter((user) => user.status === "active" && user.roles.includes("admin"))).toHaveLength(1);
  });
});

describe("closed self-registration", () => {
  const closedScope = isolation();
  let closed: ServiceBroker;
  let closedBase: string;

  beforeAll(async () => {
    const port = await freePort();
    closed = await startInProcessNode(
      testConfig(closedScope, { SERVICES: "api,auth", PORT: String(port), AUTH_SELF_REGISTRATION: "false" }),
    );
    closedBase = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await closed?.stop();
    await dropScopeDatabases(closedScope.prefix);
  });

  it("refuses registration with 403 and creates nothing, while admins can still log in", async () => {
    const res = await fetch(`${closedBase}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "late@example.com", password: "a-long-enough-password", displayName: "Late" }),
    });
    expect(res.status).toBe(403);
    expect(await json<ErrorBody>(res)).toMatchObject({ type: "FORBIDDEN", data: { reason: "REGISTRATION_CLOSED" } });
    const { rows: users } = await json<Page<User>>(
      await fetch(`${closedBase}/api/auth/users`, { headers: { authorization: `Bearer ${await login(closedBase)}` } }),
    );
    expect(users.map((user) => user.email)).toEqual(["admin@test.example"]);
  });
});
