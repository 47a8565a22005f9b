/**
 * The log store on the embedded default's wiring (one node, in-memory channels, the real PostgreSQL), with the
 * node's log shipper on: records arrive with their request id, error records become `log.error` events, searches and
 * the incremental tail, the live tail as server-sent events through the gateway, retention, and who may read.
 */
import type { BrokerOptions, ServiceBroker } from "moleculer";
import { Client } from "pg";
import { databaseUrlFor } from "../../lib/database";
import { parseEvents, type StreamEvent } from "../../lib/event-stream";
import { LogShipper } from "../../lib/log-shipper";
import type { LogPage, LogTailPage } from "../../services/logs.service";
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
import { createEnvelope } from "../../lib/events";

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
  // The request id is the gateway's own; the client's X-Request-Id is kept beside it as clientRequestId.
  const res = await fetch(`${base}/api/auth/me`, {
    headers: { authorization: `Bearer ${admin}`, "x-request-id": "logs-req-1" },
  });
  const requestId = res.headers.get("x-request-id");
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  const page = await found(`requestId=${requestId}`, "the access log line of the request");
  expect(page.rows).toEqual([
    expect.objectContaining({
      level: "info",
      module: "api",
      requestId,
      message: "access",
      nodeId: broker.nodeID,
      fields: expect.objectContaining({
        method: "GET",
        path: "/api/auth/me",
        status: 200,
        clientRequestId: "logs-req-1",
      }),
    }),
  ]);
  expect((await json<LogPage>(await get("/api/logs?requestId=logs-req-1"))).total).toBe(0);
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

  const tail = await json<LogTailPage>(await get(`/api/logs/tail?after=${before.rows[0].id}&pageSize=200`));
  expect(tail.rows.length).toBeGreaterThan(0);
  expect(tail.nextCursor).toBe(String(tail.rows.at(-1)!.id));
  expect(tail.rows.every((row) => row.id > before.rows[0].id)).toBe(true);
  expect(tail.rows.map((row) => row.id)).toEqual([...tail.rows.map((row) => row.id)].sort((a, b) => a - b));
});

it("counts the records a node reports it dropped, per node, as a metric", async () => {
  const dropped = () =>
    (broker.metrics.getMetric("aicunet.logs.dropped")?.get({ node: "far-node" })?.value as number | undefined) ?? 0;
  const before = dropped();
  await broker.sendToChannel(
    "log.batch",
    createEnvelope(
      "log.batch",
      { nodeId: "far-node", records: [], dropped: 7 },
      { source: "logs-test", correlationId: "dropped-test" },
    ),
  );
  await waitFor(async () => (dropped() - before === 7 ? true : undefined), 10_000, "the dropped count");
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

/** Reads a live tail's events until `enough` says so, then closes the stream. */
async function readEvents(res: Response, enough: (events: StreamEvent[]) => boolean): Promise<StreamEvent[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: StreamEvent[] = [];
  let buffer = "";
  const deadline = setTimeout(() => void reader.cancel(), 10_000);
  try {
    while (!enough(events)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`The stream ended after ${JSON.stringify(events)}`);
      const parsed = parseEvents(buffer + decoder.decode(value, { stream: true }));
      buffer = parsed.rest;
      events.push(...parsed.events);
    }
    return events;
  } finally {
    clearTimeout(deadline);
    await reader.cancel();
  }
}

const logEvents = (events: StreamEvent[]) =>
  events.filter((event) => event.event === "log").map((event) => JSON.parse(event.data!) as LogPage["rows"][number]);

describe("live tail", () => {
  const stream = (query: string, headers: Record<string, string> = {}, token = admin) =>
    fetch(`${base}/api/logs/stream?${query}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  it("streams new records as server-sent events, and resumes after Last-Event-ID", async () => {
    const res = await stream("service=tail-test");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const logger = broker.getLogger("tail-test");
    logger.info("tail one");
    logger.info("tail two");
    const first = await readEvents(res, (events) => logEvents(events).length >= 2);
    expect(logEvents(first).map((record) => [record.module, record.message])).toEqual([
      ["tail-test", "tail one"],
      ["tail-test", "tail two"],
    ]);
    expect(first.filter((event) => event.event === "log").map((event) => Number(event.id))).toEqual(
      logEvents(first).map((record) => record.id),
    );

    // Disconnected after the first record: a reconnect from there gets the second and what came since.
    logger.info("tail three");
    const resumed = await stream("service=tail-test", { "last-event-id": first[0].id! });
    expect(resumed.status).toBe(200);
    const rest = await readEvents(resumed, (events) => logEvents(events).length >= 2);
    expect(logEvents(rest).map((record) => record.message)).toEqual(["tail two", "tail three"]);
  });

  it("refuses before streaming: no token 401, a customer 403, a bad filter 422 naming it", async () => {
    expect((await fetch(`${base}/api/logs/stream`)).status).toBe(401);
    const customer = await registerCustomer(base, "tail-customer@example.com");
    expect((await stream("", {}, customer)).status).toBe(403);
    const bad = await stream("level=loud");
    expect(bad.status).toBe(422);
    const body = await json<{ type: string; data: { field: string }[] }>(bad);
    expect(body.type).toBe("VALIDATION_ERROR");
    expect(body.data.map((problem) => problem.field)).toEqual(["level"]);
  });
});
