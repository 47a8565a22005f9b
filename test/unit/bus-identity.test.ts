import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ServiceBroker, type Context, type Middleware } from "moleculer";
import { publicKeyOfSeed } from "../../lib/bus-claims";
import { loadConfig } from "../../lib/config";
import { SYSTEM_CALLER } from "../../lib/permissions";
import type { Caller } from "../../contracts/caller";
import { BusIdentityMiddleware } from "../../middlewares/bus-identity.middleware";
import { PermissionsMiddleware } from "../../middlewares/permissions.middleware";

// Three brokers on Moleculer's in-memory transporter: a node of ours hosting a guarded service, another node of ours,
// and a rogue without our middleware (what any process on the bus could run).
const namespace = `bus-${randomBytes(3).toString("hex")}`;
const seeds = { workflow: randomBytes(32).toString("base64url"), identity: randomBytes(32).toString("base64url") };
const trusted = Object.entries(seeds)
  .map(([role, seed]) => `${role}:${publicKeyOfSeed(seed)}`)
  .join(",");
const roleConfig = (role: keyof typeof seeds) =>
  loadConfig({
    TRANSPORTER: "nats://unused:4222",
    BUS_ROLE: role,
    BUS_SIGNING_KEY: seeds[role],
    BUS_TRUSTED_KEYS: trusted,
  });

const seen: (Caller | undefined)[] = [];
const broker = (nodeID: string, middlewares: Middleware[]) =>
  new ServiceBroker({ namespace, nodeID, transporter: "Fake", logger: false, middlewares });

const identity = broker("identity", [BusIdentityMiddleware(roleConfig("identity")), PermissionsMiddleware()]);
const workflow = broker("workflow", [BusIdentityMiddleware(roleConfig("workflow")), PermissionsMiddleware()]);
const rogue = broker("rogue", []);

identity.createService({
  name: "vault",
  actions: {
    open: { permissions: ["vault:open"], handler: (ctx: Context<unknown, { caller?: Caller }>) => ctx.meta.caller },
    whoami: { permissions: "public", handler: (ctx: Context<unknown, { caller?: Caller }>) => ctx.meta.caller ?? null },
  },
  events: {
    "vault.poked": {
      handler(ctx: Context<unknown, { caller?: Caller }>) {
        seen.push(ctx.meta.caller);
      },
    },
  },
});

beforeAll(async () => {
  await Promise.all([identity.start(), workflow.start(), rogue.start()]);
  await Promise.all([workflow.waitForServices("vault"), rogue.waitForServices("vault")]);
});

afterAll(() => Promise.all([identity.stop(), workflow.stop(), rogue.stop()]));

describe("the bus identity middleware", () => {
  it("carries a caller that a node of ours signed", async () => {
    await expect(workflow.call("vault.open", {}, { meta: { caller: SYSTEM_CALLER } })).resolves.toEqual(SYSTEM_CALLER);
  });

  it("drops a caller that arrives unsigned, so the permissions middleware refuses the call", async () => {
    const admin: Caller = { type: "user", id: "u1", roles: ["admin"], permissions: ["*"] };
    for (const caller of [SYSTEM_CALLER, admin]) {
      await expect(rogue.call("vault.open", {}, { meta: { caller } })).rejects.toMatchObject({ code: 401 });
      await expect(rogue.call("vault.whoami", {}, { meta: { caller } })).resolves.toBeNull();
    }
  });

  it("drops the caller of an unsigned event, and keeps a signed one's", async () => {
    seen.length = 0;
    rogue.emit("vault.poked", {}, { meta: { caller: SYSTEM_CALLER } });
    workflow.emit("vault.poked", {}, { meta: { caller: SYSTEM_CALLER } });
    for (let waited = 0; seen.length < 2 && waited < 2000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(seen).toHaveLength(2);
    expect(seen).toContainEqual(SYSTEM_CALLER);
    expect(seen).toContainEqual(undefined);
  });

  it("in development, signs with a key it generates into the data directory", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-bus-"));
    const devNamespace = `${namespace}-dev`;
    const dev = (nodeID: string) =>
      new ServiceBroker({
        namespace: devNamespace,
        nodeID,
        transporter: "Fake",
        logger: false,
        middlewares: [
          BusIdentityMiddleware(loadConfig({ TRANSPORTER: "nats://unused:4222", DATA_DIR: dataDir })),
          PermissionsMiddleware(),
        ],
      });
    const [a, b] = [dev("a"), dev("b")];
    a.createService({ name: "vault", actions: { open: { permissions: ["vault:open"], handler: () => "opened" } } });
    try {
      await Promise.all([a.start(), b.start()]);
      await b.waitForServices("vault");
      await expect(b.call("vault.open", {}, { meta: { caller: SYSTEM_CALLER } })).resolves.toBe("opened");
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
