/**
 * The log store on the embedded default's wiring (one node, in-memory channels, the real PostgreSQL), with the
 * node's log shipper on: records arrive with their request id, error records become `log.error` events, searches and
 * the incremental tail, retention, and who may read.
 */
import type { BrokerOptions, ServiceBroker } from "moleculer";
import { Client } from "pg";
import { databaseUrlFor } from "../../lib/database";
import { LogShipper } from "../../lib/log-shipper";
import type { LogPage } from "../../services/logs.service";
import {
  dropScopeDatabases,
  isolation,
  json,
  login,
  registerCustomer,
  startInProcessNode,
  testConfig,
  waitFor,
} from "../support/nodes";
import { freePort } from "../support/servers";

const scope = isolation();
let broker: ServiceBroker;
let base: string;
let admin: string;
let logsDb: Client;

const get = (path: string, token = admin) =>
  fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}`, "x-request-id": "logs-reader" } });

async function found(query: string, what: string): Promise<LogPage> {
  return waitFor(
    async () => {
      const page = await json<LogPage>(await get(`/api/logs?${query}`));
      return page.total > 0 ? page : undefined;
    },
    10_000,
    what,
  );
}

beforeAll(async () => {
  const port = await freePort();
  const cfg = testConfig(scope, { SERVICES: "api,auth,logs", PORT: String(port) });
  // Records are shipped (every 200 ms), not printed.
  const logger = [new LogShipper({ level: "info", intervalMs: 200 })] as unknown as BrokerOptions["logger"];
  broker = await startInProcessNode(cfg, [], { logger });
  base = `http://127.0.0.1:${port}`;
  admin = await login(base);
  logsDb = new Client({ connectionString: databaseUrlFor("logs", cfg) });
  await logsDb.connect();
});

afterAll(async () => {
  await logsDb?.end();
  await broker?.stop();
  await dropScopeDatabases(scope.prefix);
});

it("stores the node's records with their request id, searchable by request, service and level", async () => {
  await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${admin}`, "x-request-id": "logs-req-1" } });
  const page = await found("requestId=logs-req-1", "the access log line of the request");
  expect(page.rows).toEqual([
    expect.objectContaining({
      level: "info",
      module: "api",
      requestId: "logs-req-1",
      message: "access",
      nodeId: broker.nodeID,
      fields: expect.objectContaining({ method: "GET", path: "/api/auth/me", status: 200 }),
    }),
  ]);
  const byService = await json<LogPage>(await get("/api/logs?service=api&level=info&pageSize=5"));
  expect(byService.rows.length).toBeGreaterThan(0);
  expect(byService.rows.every((row) => row.module === "api")).toBe(true);
});

it("turns error records into log.error events on the bus, and the tail returns only what is newer", async () => {
  const before = await json<LogPage>(await get("/api/logs?pageSize=1"));
  broker.getLogger("products").error("Synthetic failure for the log store test", { orderId: "o-1" });
  const page = await found("level=error&search=Synthetic", "the error record");
  expect(page.rows[0]).toMatchObject({ level: "error", module: "products", fields: { orderId: "o-1" } });
  const { rows } = await logsDb.query<{ envelope: { payload: { record: { message: string } } } }>(
    "SELECT envelope FROM outbox WHERE channel = 'log.error'",
  );
  expect(rows.map((row) => row.envelope.payload.record.message)).toContain("Synthetic failure for the log store test");

  const tail = await json<LogPage>(await get(`/api/logs?afterId=${before.rows[0].id}&pageSize=200`));
  expect(tail.rows.length).toBeGreaterThan(0);
  expect(tail.rows.every((row) => row.id > before.rows[0].id)).toBe(true);
  expect(tail.rows.map((row) => row.id)).toEqual([...tail.rows.map((row) => row.id)].sort((a, b) => a - b));
});

it("removes records older than the retention", async () => {
  await logsDb.query(
    `INSERT INTO log_records (time, level, node_id, module, message) VALUES (now() - interval '30 days', 'info', 'n', 'm', 'old')`,
  );
  const logs = broker.getLocalService("logs") as unknown as { removeExpired(): Promise<number> };
  expect(await logs.removeExpired()).toBe(1);
  expect((await logsDb.query("SELECT count(*)::int AS n FROM log_records WHERE message = 'old'")).rows[0].n).toBe(0);
});

it("is for operators only, and answers bad filters with 422", async () => {
  const customer = await registerCustomer(base, "logs-customer@example.com");
  expect((await get("/api/logs", customer)).status).toBe(403);
  expect((await get("/api/logs?level=loud")).status).toBe(422);
  expect((await get("/api/logs?pageSize=5000")).status).toBe(422);
});
