/**
 * The log store on the embedded default's wiring (one node, in-memory channels, the real PostgreSQL), with the
 * node's log shipper on: records arrive with their request id, error records become `log.error` events, searches and
 * the incremental tail, the live tail as server-sent events through the gateway, retention, and who may read.
 */
import jwt from "jsonwebtoken";
import { Loggers, type BrokerOptions, type ServiceBroker, type ServiceSchema } from "moleculer";
import { Client } from "pg";
import { parseEvents, type StreamEvent } from "../../lib/event-stream";
import { LogShipper } from "../../lib/log-shipper";
import { decryptPrivateKey, signAccessToken } from "../../lib/signing-keys";
import type { LogPage, LogTailPage } from "../../contracts/logs";
import { login, registerCustomer } from "../../support/api";
import {
  dropScopeDatabases,
  type ErrorBody,
  isolation,
  json,
  TEST_ADMIN,
  TEST_KEY_SECRET,
  testConfig,
  waitFor,
} from "../../support/nodes";
import { freePort } from "../../support/servers";
import { startInProcessNode } from "../support/nodes";
import { withNode } from "../support/suite";
import { createEnvelope } from "../../lib/events";

let logsDb: Client;
let authDb: Client;

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

/** A service whose action fails with a fault of ours (a bare Error, so a 500). */
const faulty: ServiceSchema = {
  name: "faulty",
  actions: {
    fail: {
      rest: "GET /fail",
      permissions: "public",
      handler() {
        throw new Error("the disk is on fire");
      },
    },
  },
};

/** Records are shipped (every 200 ms), not printed. */
const shippingLogger = () => [new LogShipper({ level: "info", intervalMs: 200 })] as unknown as BrokerOptions["logger"];

const node = withNode({ SERVICES: "api,auth,logs" }, { services: [faulty], broker: { logger: shippingLogger() } });
const { send } = node;
const get = (path: string, token?: string) => send("GET", path, undefined, token, { "x-request-id": "logs-reader" });

beforeAll(async () => {
  logsDb = await node.database("logs");
  authDb = await node.database("auth");
});

it("stores the node's records with their request id, searchable by request, service and level", async () => {
  // The request id is the gateway's own; the client's X-Request-Id is kept beside it as clientRequestId.
  const res = await send("GET", "/api/auth/me", undefined, undefined, { "x-request-id": "logs-req-1" });
  const requestId = res.headers.get("x-request-id");
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  const page = await found(`requestId=${requestId}`, "the access log line of the request");
  expect(page.rows).toEqual([
    expect.objectContaining({
      level: "info",
      module: "api",
      requestId,
      message: "access",
      nodeId: node.broker.nodeID,
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
  node.broker.getLogger("products").error("Synthetic failure for the log store test", { orderId: "o-1" });
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

it("logs the cause of a 5xx under the request id the client got", async () => {
  const res = await fetch(`${node.base}/api/faulty/fail`);
  expect(res.status).toBe(500);
  const requestId = res.headers.get("x-request-id")!;
  const page = await found(`requestId=${requestId}&level=error`, "the error record of the failed request");
  expect(JSON.stringify(page.rows)).toContain("the disk is on fire");
});

it("counts the records a node reports it dropped, per node, as a metric", async () => {
  const dropped = () =>
    (node.broker.metrics.getMetric("aicunet.logs.dropped")?.get({ node: "far-node" })?.value as number | undefined) ??
    0;
  const before = dropped();
  await node.broker.sendToChannel(
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
  const logs = node.broker.getLocalService("logs") as unknown as { removeExpired(): Promise<number> };
  expect(await logs.removeExpired()).toBe(1);
  expect((await logsDb.query("SELECT count(*)::int AS n FROM log_records WHERE message = 'old'")).rows[0].n).toBe(0);
});

it("is for operators only, and answers bad filters with 422", async () => {
  const customer = await registerCustomer(node.base, "logs-customer@example.com");
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
  const stream = (query: string, headers: Record<string, string> = {}, token?: string) =>
    send("GET", `/api/logs/stream?${query}`, undefined, token, headers);

  it("streams new records as server-sent events, and resumes after Last-Event-ID", async () => {
    const res = await stream("service=tail-test");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const logger = node.broker.getLogger("tail-test");
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

  it("ends at the access token's exp, not a token lifetime after it opened", async () => {
    const { id } = await json<{ id: string }>(await get("/api/auth/me"));
    const { rows } = await authDb.query<{ kid: string; private_key: string }>(
      "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
    );
    const key = { kid: rows[0].kid, privateKeyPem: decryptPrivateKey(rows[0].private_key, TEST_KEY_SECRET) };
    const shortLived = signAccessToken({ sub: id, typ: "user", roles: ["admin"] }, key, {
      issuer: "aicunet",
      audience: "aicunet-api",
      ttlSeconds: 3,
    });
    const exp = (jwt.decode(shortLived) as { exp: number }).exp * 1000;
    const res = await stream("service=expiry-test", {}, shortLived);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const giveUp = setTimeout(() => void reader.cancel(), 15_000);
    try {
      while (!(await reader.read()).done);
    } finally {
      clearTimeout(giveUp);
    }
    expect(Math.abs(Date.now() - exp)).toBeLessThan(1500);
  });

  it("ends when its token is revoked (the operator is disabled)", async () => {
    const operator = { email: "tail-operator@example.com", password: "a-long-enough-password" };
    const created = await send("POST", "/api/auth/users", {
      ...operator,
      displayName: "Tail operator",
      roles: ["operator"],
    });
    const { id } = await json<{ id: string }>(created);
    const res = await stream("service=revocation-test", {}, await login(node.base, operator));
    expect(res.status).toBe(200);
    const disabled = await send("PATCH", `/api/auth/users/${id}`, { status: "disabled" });
    expect(disabled.status).toBe(200);
    const revokedAt = Date.now();
    const reader = res.body!.getReader();
    const giveUp = setTimeout(() => void reader.cancel(), 15_000);
    try {
      while (!(await reader.read()).done);
    } finally {
      clearTimeout(giveUp);
    }
    expect(Date.now() - revokedAt).toBeLessThan(5000);
  });

  it("refuses before streaming: no token 401, a customer 403, a bad filter 422 naming it", async () => {
    expect((await fetch(`${node.base}/api/logs/stream`)).status).toBe(401);
    const customer = await registerCustomer(node.base, "tail-customer@example.com");
    expect((await stream("", {}, customer)).status).toBe(403);
    const bad = await stream("level=loud");
    expect(bad.status).toBe(422);
    const body = await json<{ type: string; data: { field: string }[] }>(bad);
    expect(body.type).toBe("VALIDATION_ERROR");
    expect(body.data.map((problem) => problem.field)).toEqual(["level"]);
  });
});

/** Every record a node logs, as text: what the log store would get (the shipper may lose what precedes its channel). */
class CapturingLogger extends Loggers.Base<Record<string, never>> {
  readonly records: string[] = [];

  override getLogHandler() {
    return (_type: string, args: unknown[]) => {
      this.records.push(args.map((arg) => (typeof arg === "string" ? arg : JSON.stringify(arg))).join(" "));
    };
  }
}

describe("a generated first-admin password", () => {
  const generatedScope = isolation();
  const captured = new CapturingLogger({});
  let generatedNode: ServiceBroker;
  let nodeBase: string;
  let terminal = "";

  beforeAll(async () => {
    const port = await freePort();
    const write = jest.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      terminal += chunk.toString();
      return true;
    });
    try {
      generatedNode = await startInProcessNode(
        testConfig(generatedScope, { SERVICES: "api,auth,logs", PORT: String(port), ADMIN_PASSWORD: "" }),
        [],
        { logger: [...(shippingLogger() as unknown[]), captured] as unknown as BrokerOptions["logger"] },
      );
    } finally {
      write.mockRestore();
    }
    nodeBase = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await generatedNode?.stop();
    await dropScopeDatabases(generatedScope.prefix);
  });

  const post = (path: string, body: unknown) =>
    fetch(`${nodeBase}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("is shown on the terminal only, never in the log store, and must be changed at the first sign-in", async () => {
    const password = /Generated password[^:]*: (\S+)/.exec(terminal)?.[1];
    expect(password).toBeDefined();
    const credentials = { email: TEST_ADMIN.email, password: password! };

    const first = await post("/api/auth/login", credentials);
    expect(first.status).toBe(403);
    expect(await json<ErrorBody>(first)).toMatchObject({
      type: "PASSWORD_CHANGE_REQUIRED",
      data: { changePassword: "POST /api/auth/password" },
    });
    const changed = await post("/api/auth/password", {
      email: TEST_ADMIN.email,
      currentPassword: password,
      newPassword: "the-admin-chose-this-one",
    });
    expect(changed.status).toBe(200);
    const { accessToken } = await json<{ accessToken: string }>(changed);
    expect((await post("/api/auth/login", credentials)).status).toBe(401);
    expect((await post("/api/auth/login", { ...credentials, password: "the-admin-chose-this-one" })).status).toBe(200);

    // The logger (which feeds the log store) says the admin was created, never with the password.
    const creation = captured.records.filter((record) => record.startsWith("Created the first admin"));
    expect(creation).toEqual([expect.stringContaining("written to this node's terminal only")]);
    expect(captured.records.filter((record) => record.includes(password!))).toEqual([]);
    const search = await fetch(`${nodeBase}/api/logs?search=${encodeURIComponent(password!)}`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect((await json<LogPage>(search)).total).toBe(0);
  });
});
