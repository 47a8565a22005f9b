/**
 * No committed write loses its audit record. A record published by the audit middleware: with NATS down the gateway
 * node spools it to disk before it answers, is then killed, and publishes it when it starts again with NATS back. A
 * record written through its service's outbox: it is committed with the change, so a node killed right after that
 * commit, before anything was published, publishes it when it starts again. Real NATS (this file's own, so it can
 * stop it) and PostgreSQL, the gateway and the audit service in two processes.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";
import type { Product } from "../../contracts/products";
import { apiRequest, login, orderBody } from "../../support/api";
import {
  crashed,
  dropScopeDatabases,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  scopedDatabaseUrl,
  startNodeProcess,
  waitFor,
} from "../../support/nodes";
import { freePort, type NatsServer, startNats } from "../../support/servers";

const scope = isolation();
let nats: NatsServer;
let dataDir: string;
let env: Record<string, string>;
let gateway: NodeProcess;
let auditNode: NodeProcess;
let port: number;
let base: string;
let auditDb: Client;

const startGateway = (extra: Record<string, string> = {}) =>
  startNodeProcess({ ...env, SERVICES: "api,auth,products,orders", NODE_ID: "gateway", PORT: String(port), ...extra });

async function recordsOf(requestId: string): Promise<number> {
  const { rows } = await auditDb.query<{ count: number }>(
    "SELECT count(*)::int AS count FROM audit_records WHERE request_id = $1",
    [requestId],
  );
  return rows[0].count;
}

beforeAll(async () => {
  nats = await startNats();
  dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-spool-"));
  env = nodeEnv(scope, { TRANSPORTER: nats.url, DATA_DIR: dataDir });
  port = await freePort();
  [gateway, auditNode] = await Promise.all([
    startGateway(),
    startNodeProcess({ ...env, SERVICES: "audit", NODE_ID: "audit-node" }),
  ]);
  base = `http://127.0.0.1:${port}`;
  auditDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "audit") });
  await auditDb.connect();
}, 90_000);

afterAll(async () => {
  await auditDb?.end();
  await Promise.all([gateway?.stop("SIGKILL"), auditNode?.stop("SIGKILL")]);
  await nats?.stop();
  await dropScopeDatabases(scope.prefix);
  await rm(dataDir, { recursive: true, force: true });
});

it("spools the record of a write answered while NATS is down, and publishes it after a crash and restart", async () => {
  const token = await login(base);
  const created = await apiRequest(base, token, "POST", "/api/products", {
    sku: "SPOOL-1",
    name: "Spooled",
    price: { amount: 100, currency: "EUR" },
  });
  const createId = created.headers.get("x-request-id")!;
  expect(created.status).toBe(201);
  const product = await json<Product>(created);
  await waitFor(async () => ((await recordsOf(createId)) === 1 ? true : undefined), 15_000, "the first record");

  await nats.kill();
  const patched = await apiRequest(
    base,
    token,
    "PATCH",
    `/api/products/${product.id}`,
    { name: "Spooled again" },
    { "if-match": String(product.version) },
  );
  const patchId = patched.headers.get("x-request-id")!;
  expect(patched.status).toBe(200);
  const spoolDir = path.join(dataDir, "audit-spool", scope.namespace);
  expect((await readdir(spoolDir)).filter((name) => name.endsWith(".json"))).toHaveLength(1);
  // The node dies with the record only on disk.
  await gateway.stop("SIGKILL");

  await nats.start();
  gateway = await startGateway();
  await waitFor(async () => ((await recordsOf(patchId)) === 1 ? true : undefined), 30_000, "the spooled record");
  expect(await readdir(spoolDir)).toEqual([]);
  const verdict = await json<{ valid: boolean }>(await apiRequest(base, await login(base), "GET", "/api/audit/verify"));
  expect(verdict.valid).toBe(true);
  // Published once, recorded once, however often the spool was retried.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  expect(await recordsOf(patchId)).toBe(1);
}, 120_000);

it("commits an order's record with the order: a node killed after that commit publishes it when it starts again", async () => {
  const token = await login(base);
  const created = await apiRequest(base, token, "POST", "/api/products", {
    sku: "OUTBOX-AUDIT-1",
    name: "Recorded with its change",
    price: { amount: 250, currency: "EUR" },
    stock: 10,
  });
  expect(created.status).toBe(201);
  const product = await json<Product>(created);

  await gateway.stop("SIGTERM");
  // Dies as the order's transaction commits, before its events or its record leave the outbox.
  gateway = await startGateway({ FAILPOINTS: "outbox.committed:audit.recorded" });
  const placing = apiRequest(
    base,
    await login(base),
    "POST",
    "/api/orders",
    orderBody(product.id, "Crash After Commit"),
  );
  await expect(placing).rejects.toThrow();
  await crashed(gateway);

  const ordersDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "orders") });
  await ordersDb.connect();
  try {
    const { rows: orders } = await ordersDb.query<{ id: string }>("SELECT id FROM orders");
    expect(orders).toHaveLength(1);
    const { rows: unsent } = await ordersDb.query<{ channel: string }>(
      "SELECT channel FROM outbox WHERE sent_at IS NULL ORDER BY seq",
    );
    expect(unsent.map((row) => row.channel)).toEqual(["order.created", "audit.recorded"]);

    gateway = await startGateway();
    const recorded = async () => {
      const { rows } = await auditDb.query<{ entity_id: string }>(
        "SELECT entity_id FROM audit_records WHERE name = 'orders.create'",
      );
      return rows.length > 0 ? rows : undefined;
    };
    expect(await waitFor(recorded, 30_000, "the order's record")).toEqual([{ entity_id: orders[0].id }]);
    await waitFor(
      async () =>
        (await ordersDb.query("SELECT 1 FROM outbox WHERE sent_at IS NULL")).rowCount === 0 ? true : undefined,
      15_000,
      "the outbox sent",
    );
  } finally {
    await ordersDb.end();
  }
}, 120_000);
