/**
 * The bus is a trust boundary (docs/security.md, "Trust boundaries"). The identity and gateway roles run as separate
 * processes on a NATS server of this suite's own, with the authorization config the deployments use
 * (k8s/base/platform/nats-authorization.conf) and TLS, each role with its own NATS user and its own caller-claim key.
 * Rogue brokers then try to act as the system or as an admin: one without credentials is not let in; one with
 * another role's NATS credentials cannot take the identity role's requests, and its forged callers are dropped; one
 * holding the gateway's claim key may still not assert the system identity on a privileged action. On a plain NATS
 * without auth (the shared one), the claim check alone refuses a forged `meta.caller`.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { connect } from "nats";
import { publicKeyOfSeed } from "../../lib/bus-claims";
import { loadConfig } from "../../lib/config";
import { SYSTEM_CALLER } from "../../lib/permissions";
import type { Caller } from "../../contracts/caller";
import { BusIdentityMiddleware } from "../../middlewares/bus-identity.middleware";
import { login, registerCustomer } from "../../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  ROOT,
  startNodeProcess,
  testConfig,
  testNatsUrl,
  waitFor,
} from "../../support/nodes";
import { type NatsServer, startNats } from "../../support/servers";
import { startInProcessNode } from "../support/nodes";

const ROLES = ["gateway", "identity", "commerce", "workflow", "providers", "operations"] as const;
type Role = (typeof ROLES)[number];
// The channels' subjects are prefixed with the namespace, which the authorization config allows by name.
const NAMESPACE = "aicunet";

const scope = isolation();
const passwords = Object.fromEntries(ROLES.map((role) => [role, randomBytes(16).toString("hex")])) as Record<
  Role,
  string
>;
const seeds = Object.fromEntries(ROLES.map((role) => [role, randomBytes(32).toString("base64url")])) as Record<
  Role,
  string
>;
const trustedKeys = ROLES.map((role) => `${role}:${publicKeyOfSeed(seeds[role])}`).join(",");

let dir: string;
let nats: NatsServer;
let natsUrl: string;
let caFile: string;
let identity: NodeProcess;
let gateway: NodeProcess;
let base: string;
const rogues: ServiceBroker[] = [];

/** A CA and a server certificate for 127.0.0.1 it signed, made with openssl as an operator would. */
function makeCertificates(into: string): { ca: string; cert: string; key: string } {
  const file = (name: string) => path.join(into, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl(
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"],
    ...["-subj", "/CN=aicunet-test-ca", "-keyout", file("ca.key"), "-out", file("ca.pem")],
  );
  openssl(
    ...["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=nats"],
    ...["-keyout", file("server.key"), "-out", file("server.csr")],
  );
  openssl(
    ...["x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key")],
    ...["-CAcreateserial", "-days", "1", "-out", file("server.pem")],
    ...["-extfile", file("san.cnf")],
  );
  return { ca: file("ca.pem"), cert: file("server.pem"), key: file("server.key") };
}

/** The environment of a node of `role` on the secured bus. */
function roleEnv(role: Role, services: string): Record<string, string> {
  return nodeEnv(scope, {
    NAMESPACE,
    TRANSPORTER: natsUrl,
    SERVICES: services,
    NATS_USER: role,
    NATS_PASSWORD: passwords[role],
    NATS_TLS_CA: caFile,
    BUS_ROLE: role,
    BUS_SIGNING_KEY: seeds[role],
    BUS_TRUSTED_KEYS: trustedKeys,
    NODE_ID: `${role}-node`,
  });
}

/** A broker that is no node of ours: the given transporter, no services, and only the middlewares it is given. */
async function startRogue(transporter: BrokerOptions["transporter"], options: Partial<BrokerOptions> = {}) {
  const rogue = new ServiceBroker({
    namespace: NAMESPACE,
    nodeID: `rogue-${randomBytes(3).toString("hex")}`,
    logger: false,
    transporter,
    ...options,
  });
  rogues.push(rogue);
  await rogue.start();
  await rogue.waitForServices(["auth"], 20_000);
  return rogue;
}

const secured = (role: Role) => ({
  type: "NATS" as const,
  // As moleculer.config.ts passes them: servers, not a URL (whose empty credentials would replace these).
  options: { servers: [new URL(natsUrl).host], user: role, pass: passwords[role], tls: { caFile } },
});

/** What a rogue tries with a forged caller: make a customer an admin, mint an admin machine client. */
function privilegedCalls(rogue: ServiceBroker, customerId: string, caller: Caller) {
  return [
    rogue.call("auth.users.update", { id: customerId, roles: ["admin"] }, { meta: { caller } }),
    rogue.call("auth.clients.create", { name: "rogue", scopes: ["users:admin"] }, { meta: { caller } }),
    rogue.call("auth.users.list", {}, { meta: { caller } }),
  ];
}

async function customer(email: string): Promise<{ id: string; token: string }> {
  const token = await registerCustomer(base, email);
  const me = await json<{ id: string }>(
    await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } }),
  );
  return { id: me.id, token };
}

async function rolesOf(id: string): Promise<string[]> {
  const res = await fetch(`${base}/api/auth/users/${id}`, {
    headers: { authorization: `Bearer ${await login(base)}` },
  });
  return (await json<{ roles: string[] }>(res)).roles;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "aicunet-bus-"));
  await writeFile(path.join(dir, "san.cnf"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n");
  const tls = makeCertificates(dir);
  caFile = tls.ca;
  // The deployments' authorization block as it is, its password variables defined ahead of it (an included file
  // would not see them).
  const authorization = await readFile(path.join(ROOT, "k8s/base/platform/nats-authorization.conf"), "utf8");
  const variables = ROLES.map((role) => `NATS_${role.toUpperCase()}_PASSWORD: "${passwords[role]}"`).join("\n");
  const tlsBlock = `tls { cert_file: "${tls.cert}", key_file: "${tls.key}", ca_file: "${tls.ca}" }`;
  const configFile = path.join(dir, "nats.conf");
  await writeFile(configFile, `${variables}\n${tlsBlock}\n${authorization}`);
  nats = await startNats(["-c", configFile]);
  natsUrl = nats.url;
  identity = await startNodeProcess(roleEnv("identity", "auth"));
  gateway = await startNodeProcess(roleEnv("gateway", "api"));
  base = `http://127.0.0.1:${gateway.port}`;
  await waitFor(() => login(base), 20_000, "the gateway to reach the identity node");
});

afterAll(async () => {
  await Promise.all(rogues.map((rogue) => rogue.stop().catch(() => undefined)));
  await Promise.all([identity?.stop("SIGKILL"), gateway?.stop("SIGKILL")]);
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
  await dropScopeDatabases(scope.prefix);
});

describe("on the secured bus (NATS users with subject permissions, TLS, per-role claim keys)", () => {
  it("serves the legitimate roles: an admin lists users through the gateway, the identity node behind it", async () => {
    const res = await fetch(`${base}/api/auth/users`, { headers: { authorization: `Bearer ${await login(base)}` } });
    expect(res.status).toBe(200);
  });

  it("does not let a process without credentials, or without TLS, connect at all", async () => {
    await expect(connect({ servers: natsUrl, tls: { caFile } })).rejects.toMatchObject({
      code: "AUTHORIZATION_VIOLATION",
    });
    await expect(
      connect({ servers: natsUrl, user: "gateway", pass: "guessed", tls: { caFile } }),
    ).rejects.toMatchObject({
      code: "AUTHORIZATION_VIOLATION",
    });
    // A server that requires TLS turns a plain-text client away.
    await expect(connect({ servers: natsUrl, user: "gateway", pass: passwords.gateway })).rejects.toThrow();
  });

  it("does not let another role's credentials take the identity role's requests", async () => {
    const nc = await connect({ servers: natsUrl, user: "providers", pass: passwords.providers, tls: { caFile } });
    try {
      const refused = new Promise<Error>((resolve) => {
        nc.subscribe(`MOL-${NAMESPACE}.REQB.auth.users.update`, { callback: (err) => err && resolve(err) });
      });
      await nc.flush();
      expect((await refused).message).toMatch(/Permissions Violation for Subscription/);
    } finally {
      await nc.close();
    }
  });

  it("does not let the gateway's credentials publish domain events, which other roles act on", async () => {
    const connectAs = (role: Role) => connect({ servers: natsUrl, user: role, pass: passwords[role], tls: { caFile } });
    const [commerce, edge] = await Promise.all([connectAs("commerce"), connectAs("gateway")]);
    try {
      const subject = `${NAMESPACE}.order.created`;
      await (await commerce.jetstreamManager()).streams.add({ name: "bus_trust_orders", subjects: [subject] });
      await expect(commerce.jetstream().publish(subject, new Uint8Array([1]))).resolves.toHaveProperty("seq", 1);
      await expect(edge.jetstream().publish(subject, new Uint8Array([2]), { timeout: 2000 })).rejects.toMatchObject({
        code: "PERMISSIONS_VIOLATION",
      });
      // What the gateway does publish, its log records, it still may.
      await expect(edge.jetstream().publish(`${NAMESPACE}.log.batch`, new Uint8Array([3]))).resolves.toBeDefined();
    } finally {
      await Promise.all([commerce.close(), edge.close()]);
    }
  });

  it("refuses every privileged call of a broker with another role's credentials that claims to be the system or an admin", async () => {
    const victim = await customer("bus-victim-1@test.example");
    const rogue = await startRogue(secured("providers"));
    const forgedAdmin: Caller = { type: "user", id: victim.id, roles: ["admin"], permissions: ["*"] };
    for (const caller of [SYSTEM_CALLER, forgedAdmin]) {
      const outcomes = await Promise.allSettled(privilegedCalls(rogue, victim.id, caller));
      for (const outcome of outcomes) {
        expect(outcome).toMatchObject({ status: "rejected", reason: { code: 401, type: "UNAUTHORIZED" } });
      }
    }
    expect(await rolesOf(victim.id)).toEqual(["customer"]);
  });

  it("refuses the system identity asserted with the gateway's own claim key, beyond the gateway's own reads", async () => {
    const victim = await customer("bus-victim-2@test.example");
    // A compromised gateway: its NATS credentials and its claim key.
    const cfg = loadConfig(roleEnv("gateway", "api"));
    const rogue = await startRogue(secured("gateway"), { middlewares: [BusIdentityMiddleware(cfg)] });
    // The signature is good: what the gateway asks as the system for itself still works...
    await expect(rogue.call("auth.jwks", {}, { meta: { caller: SYSTEM_CALLER } })).resolves.toHaveProperty("keys");
    // ...but it may not act as the system elsewhere.
    const outcomes = await Promise.allSettled(privilegedCalls(rogue, victim.id, SYSTEM_CALLER));
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ status: "rejected", reason: { code: 401, type: "UNAUTHORIZED" } });
    }
    expect(await rolesOf(victim.id)).toEqual(["customer"]);
  });
});

describe("on a plain bus (NATS without auth)", () => {
  const plainScope = isolation();
  let node: ServiceBroker;

  beforeAll(async () => {
    node = await startInProcessNode(
      testConfig(plainScope, { TRANSPORTER: testNatsUrl(), SERVICES: "auth", NODE_ID: "plain-identity" }),
    );
  });

  afterAll(async () => {
    await node?.stop();
    await dropScopeDatabases(plainScope.prefix);
  });

  it("refuses a forged system caller from a broker that joined the bus", async () => {
    const rogue = await startRogue(
      { type: "NATS", options: { url: testNatsUrl() } },
      { namespace: plainScope.namespace },
    );
    const { id } = await node.call<{ id: string }, object>(
      "auth.users.create",
      { email: "bus-plain@test.example", password: "a-long-enough-password", displayName: "Plain" },
      { meta: { caller: SYSTEM_CALLER } },
    );
    const outcomes = await Promise.allSettled(privilegedCalls(rogue, id, SYSTEM_CALLER));
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ status: "rejected", reason: { code: 401, type: "UNAUTHORIZED" } });
    }
    const user = await node.call<{ roles: string[] }, object>(
      "auth.users.get",
      { id },
      { meta: { caller: SYSTEM_CALLER } },
    );
    expect(user.roles).toEqual(["customer"]);
  });
});
