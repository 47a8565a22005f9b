/**
 * No acknowledged write loses its audit record: with NATS down the gateway node spools the record to disk before it
 * answers, is then killed, and publishes the record when it starts again with NATS back. Real NATS (this file's own,
 * so it can stop it) and PostgreSQL, the gateway and the audit service in two processes.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";
import type { Product } from "../../services/products.service";
import { apiRequest } from "../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  login,
  nodeEnv,
  scopedDatabaseUrl,
  startNodeProcess,
  waitFor,
  type NodeProcess,
} from "../support/nodes";
import { freePort, startNats, type NatsServer } from "../support/servers";

const scope = isolation();
let nats: NatsServer;
let dataDir: string;
let env: Record<string, string>;
let gateway: NodeProcess;
let auditNode: NodeProcess;
let port: number;
let base: string;
let auditDb: Client;

const startGateway = () =>
  startNodeProcess({ ...env, SERVICES: "api,auth,products", NODE_ID: "gateway", PORT: String(port) });

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
