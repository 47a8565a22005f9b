/**
 * The durable event backbone over a real NATS JetStream (this file's own nats-server, so it can restart it) and the
 * real PostgreSQL, with producer and consumers in separate processes: the producer (gateway, auth, products, orders
 * with its outbox), exec and dlq, and a probe consumer (test/support/probe.service.ts) whose effects are counted.
 */
import { connect, type NatsConnection } from "nats";
import { Client } from "pg";
import { createEnvelope } from "../../lib/events";
import type { Page } from "../../lib/paging";
import type { DeadLetter, DeadLetterPage } from "../../contracts/dead-letters";
import type { Task } from "../../contracts/exec";
import type { Order } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { gatewayClient, login, orderBody, type GatewayTarget } from "../../support/api";
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
let env: Record<string, string>;
let producer: NodeProcess;
let execNode: NodeProcess;
let probe: NodeProcess | undefined;
let producerPort: number;
let product: Product;
let probeDb: Client;
let ordersDb: Client;

const scopedUrl = (database: string) => scopedDatabaseUrl(scope.prefix, database);

const startProducer = (extra: Record<string, string> = {}) =>
  startNodeProcess({
    ...env,
    SERVICES: "api,auth,products,orders",
    NODE_ID: "producer",
    PORT: String(producerPort),
    ...extra,
  });

const startProbe = async () => {
  probe = await startNodeProcess(
    { ...env, NODE_ID: "probe-node", PROBE_DATABASE_URL: scopedUrl("probe") },
    { script: "test/support/probe-node.ts" },
  );
};

const api: GatewayTarget = { base: "", token: "" };
const client = gatewayClient(api);
const { send } = client;
/** Places an order through the gateway; the shipping name selects a probe fault. 500 EUR per item. */
const placeOrder = (shippingName: string, quantity = 1) => client.placeOrder(product.id, shippingName, { quantity });

async function count(db: Client, sql: string, bind: unknown[] = []): Promise<number> {
  return Number((await db.query<{ count: string }>(sql, bind)).rows[0].count);
}

const effectsOf = (orderId: string) => count(probeDb, "SELECT count(*) FROM effects WHERE order_id = $1", [orderId]);
const attemptsOf = (orderId: string) => count(probeDb, "SELECT count(*) FROM attempts WHERE order_id = $1", [orderId]);

async function waitForEffect(orderId: string, timeoutMs = 20_000) {
  await waitFor(async () => ((await effectsOf(orderId)) > 0 ? true : undefined), timeoutMs, `the effect of ${orderId}`);
}

async function deadLetters(query: string): Promise<DeadLetterPage> {
  const res = await send("GET", `/api/dlq?${query}`);
  expect(res.status).toBe(200);
  return json<DeadLetterPage>(res);
}

beforeAll(async () => {
  nats = await startNats();
  env = nodeEnv(scope, {
    TRANSPORTER: nats.url,
    DELIVERY_MAX_ATTEMPTS: "3",
    DELIVERY_RETRY_DELAY: "200",
    DELIVERY_ACK_WAIT: "2000",
  });
  producerPort = await freePort();
  [producer, execNode] = await Promise.all([
    startProducer(),
    startNodeProcess({ ...env, SERVICES: "exec,dlq", NODE_ID: "exec-node" }),
  ]);
  api.base = `http://127.0.0.1:${producerPort}`;
  api.token = await login(api.base);
  product = await client.createProduct({
    sku: "EVT-1",
    name: "Event widget",
    price: { amount: 500, currency: "EUR" },
    stock: 100_000,
  });
  ordersDb = new Client({ connectionString: scopedUrl("orders") });
  await ordersDb.connect();
}, 90_000);

afterAll(async () => {
  await Promise.all([probeDb?.end(), ordersDb?.end()]);
  await Promise.all([producer?.stop("SIGKILL"), execNode?.stop("SIGKILL"), probe?.stop("SIGKILL")]);
  await nats?.stop();
  await dropScopeDatabases(scope.prefix);
});

it("processes an event committed while its consumer was down, once the consumer starts", async () => {
  // The probe's consumer group does not exist yet; exec's does, and its built-in rule reviews orders of 1000 EUR+.
  const order = await placeOrder("DOWN-1", 250);
  await startProbe();
  probeDb = new Client({ connectionString: scopedUrl("probe") });
  await probeDb.connect();
  await waitForEffect(order.id);
  expect(await effectsOf(order.id)).toBe(1);

  const task = await waitFor(
    async () => {
      const tasks = (await json<Page<Task>>(await send("GET", `/api/exec/tasks?subject=${order.id}`))).rows;
      return tasks[0];
    },
    15_000,
    "the review task",
  );
  expect(task).toMatchObject({ kind: "order-review", subject: order.id, details: { total: order.total } });

  // The probe stops; what is committed meanwhile waits in the stream for it.
  await probe!.stop("SIGTERM");
  const whileDown = [await placeOrder("DOWN-2"), await placeOrder("DOWN-3")];
  await startProbe();
  for (const placed of whileDown) await waitForEffect(placed.id);
  for (const placed of whileDown) expect(await effectsOf(placed.id)).toBe(1);
});

it("redelivers a message whose consumer was killed mid-message, and its effect happens once", async () => {
  await probeDb.query("INSERT INTO faults VALUES ('SLOW-1', 'slow')");
  const order = await placeOrder("SLOW-1");
  await waitFor(async () => ((await attemptsOf(order.id)) > 0 ? true : undefined), 15_000, "the first attempt");
  await probe!.stop("SIGKILL");
  await probeDb.query("DELETE FROM faults WHERE shipping_name = 'SLOW-1'");
  expect(await effectsOf(order.id)).toBe(0);

  await startProbe();
  await waitForEffect(order.id);
  // Whatever else JetStream redelivers meanwhile, the inbox keeps it to one effect. A sleep, not a wait: it gives a
  // second effect, which must not happen, the time to appear.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  expect(await effectsOf(order.id)).toBe(1);
  expect(await attemptsOf(order.id)).toBeGreaterThanOrEqual(2);
});

it("drops the copy a relay killed between publish and mark publishes again", async () => {
  // The producer kills itself once JetStream has acknowledged an order.created and before the row is marked sent.
  await producer.stop("SIGTERM");
  producer = await startProducer({ FAILPOINTS: "outbox.published:order.created" });
  // The crash may cut the POST's answer off: the order is found by its shipping name.
  await send("POST", "/api/orders", orderBody(product.id, "RELAY-1")).catch(() => undefined);
  expect(await crashed(producer)).toBe("SIGKILL");
  const { rows } = await ordersDb.query<{ id: string; order_id: string; sent_at: Date | null }>(
    `SELECT x.id, o.id AS order_id, x.sent_at FROM orders o
     JOIN outbox x ON x.channel = 'order.created' AND x.envelope->'payload'->'order'->>'id' = o.id::text
     WHERE o.shipping_address->>'name' = 'RELAY-1'`,
  );
  expect(rows).toHaveLength(1);
  const [{ id: eventId, order_id: orderId, sent_at: sentAt }] = rows;
  expect(sentAt).toBeNull();
  // It did leave: the probe consumes it while the producer is down.
  await waitForEffect(orderId);
  // And a copy under another JetStream message id, as if JetStream's duplicate window had passed: the inbox's turn.
  const connection = await connect({ servers: nats.url });
  const { rows: outboxRows } = await ordersDb.query("SELECT envelope FROM outbox WHERE id = $1", [eventId]);
  await connection
    .jetstream()
    .publish(`${scope.namespace}.order.created`, Buffer.from(JSON.stringify(outboxRows[0].envelope)), {
      msgID: `${eventId}-late-copy`,
    });
  await connection.close();

  producer = await startProducer();
  await waitFor(
    async () => {
      const { rows: sent } = await ordersDb.query("SELECT sent_at FROM outbox WHERE id = $1", [eventId]);
      return sent[0].sent_at ? true : undefined;
    },
    20_000,
    "the relay to publish the row again",
  );
  // The republished copy (same message id) JetStream dropped; the late copy the inbox made a no-op. A sleep, not a
  // wait: it gives a second effect or attempt, which must not happen, the time to appear.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  expect(await effectsOf(orderId)).toBe(1);
  expect(await attemptsOf(orderId)).toBe(1);
});

it("parks a poison message after its attempts, replays it once fixed, and leaves the queue empty", async () => {
  await probeDb.query("INSERT INTO faults VALUES ('POISON-1', 'poison')");
  const order = await placeOrder("POISON-1");
  const entry = await waitFor(
    async () => (await deadLetters("group=probe&status=PENDING&search=POISON-1")).rows[0],
    20_000,
    "the dead letter",
  );
  expect(entry).toMatchObject({
    channel: "order.created",
    group: "probe",
    replayable: true,
    attempts: 3,
    error: { type: "PROBE_FAULT", message: "probe: poisoned order", code: 500 },
  });
  expect((entry.message as { payload: { order: Order } }).payload.order.id).toBe(order.id);
  expect(await attemptsOf(order.id)).toBe(3);
  expect(await effectsOf(order.id)).toBe(0);

  await probeDb.query("DELETE FROM faults WHERE shipping_name = 'POISON-1'");
  const replay = await send("POST", `/api/dlq/${entry.id}/replay`);
  expect(replay.status).toBe(200);
  expect(await json<DeadLetter>(replay)).toMatchObject({ status: "REPLAYED", replayCount: 1 });
  await waitForEffect(order.id);
  const resolved = await waitFor(
    async () => {
      const current = await json<DeadLetter>(await send("GET", `/api/dlq/${entry.id}`));
      return current.status === "RESOLVED" ? current : undefined;
    },
    15_000,
    "the entry to be resolved",
  );
  expect(resolved.resolvedAt).not.toBeNull();
  expect(await effectsOf(order.id)).toBe(1);
  expect((await deadLetters("status=PENDING")).total).toBe(0);
});

it("parks bad payloads (not JSON, too large, wrong schema) with a validation error and touches nothing else", async () => {
  const effectsBefore = await count(probeDb, "SELECT count(*) FROM effects");
  const tasksBefore = (await json<Page<Task>>(await send("GET", "/api/exec/tasks"))).total;
  const wrongSchema = createEnvelope(
    "order.created",
    { order: { id: "not-a-uuid" } },
    {
      source: "orders",
      correlationId: "bad-payload-test",
    },
  );
  const connection: NatsConnection = await connect({ servers: nats.url });
  const js = connection.jetstream();
  const subject = `${scope.namespace}.order.created`;
  await js.publish(subject, Buffer.from("{ this is not json"));
  await js.publish(subject, Buffer.from(JSON.stringify({ filler: "x".repeat(300 * 1024) })));
  await js.publish(subject, Buffer.from(JSON.stringify(wrongSchema)));
  await connection.close();

  // Each consumer group of the channel (probe and exec) parks each of the three.
  const parked = await waitFor(
    async () => {
      const page = await deadLetters("status=PENDING&errorType=VALIDATION_ERROR&pageSize=100");
      return page.total === 6 ? page.rows : undefined;
    },
    20_000,
    "six dead letters",
  );
  const reasons = (group: string) =>
    parked
      .filter((entry) => entry.group === group)
      .map((entry) => ((entry.error.data as { type: string }[])[0] ?? { type: "" }).type)
      .sort();
  for (const group of ["probe", "exec"]) {
    expect(reasons(group)).toEqual(["messageTooLarge", "notJson", "uuid"]);
  }
  expect(parked.filter((entry) => !entry.replayable)).toHaveLength(4);
  const schemaEntry = parked.find((entry) => entry.group === "probe" && entry.messageId === wrongSchema.id)!;
  expect(schemaEntry.error.data).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ field: "payload.order.id", type: "uuid", actual: "not-a-uuid" }),
      expect.objectContaining({ field: "payload.order.customerId", type: "required" }),
    ]),
  );

  expect(await count(probeDb, "SELECT count(*) FROM effects")).toBe(effectsBefore);
  expect(await count(probeDb, "SELECT count(*) FROM inbox WHERE message_id = $1", [wrongSchema.id])).toBe(0);
  expect((await json<Page<Task>>(await send("GET", "/api/exec/tasks"))).total).toBe(tasksBefore);

  // Not replayable: they never were envelopes. A replay operation does not count them, so expecting them starts nothing.
  const notReplayable = parked.find((entry) => !entry.replayable)!;
  expect((await send("POST", `/api/dlq/${notReplayable.id}/replay`)).status).toBe(409);
  const batch = await send("POST", "/api/dlq/replays", { until: new Date().toISOString(), expectedCount: 5 });
  expect(batch.status).toBe(409);
  expect(await json<{ data: unknown }>(batch)).toMatchObject({ data: { expectedCount: 5, actualCount: 2 } });
  for (const entry of parked) {
    expect((await send("DELETE", `/api/dlq/${entry.id}`, { reason: "not an envelope" })).status).toBe(200);
  }
  expect((await deadLetters("status=PENDING")).total).toBe(0);
});

it("loses no event while NATS is killed with events in flight, stays down, and restarts", async () => {
  const orders: Order[] = [];
  for (let i = 0; i < 10; i++) orders.push(await placeOrder(`FLOW-${i}`));
  const inFlight = Array.from({ length: 5 }, (_, i) => placeOrder(`FLOW-IN-FLIGHT-${i}`));
  await nats.kill();
  orders.push(...(await Promise.all(inFlight)));
  // Committed while NATS is down: accepted, and waiting in the outbox.
  for (let i = 0; i < 5; i++) orders.push(await placeOrder(`FLOW-DOWN-${i}`));
  expect(await count(ordersDb, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")).toBeGreaterThanOrEqual(5);
  await nats.start();
  for (let i = 0; i < 10; i++) orders.push(await placeOrder(`FLOW-AFTER-${i}`));
  await waitFor(
    async () => {
      const processed = await count(probeDb, "SELECT count(DISTINCT order_id) FROM effects WHERE order_id = ANY($1)", [
        orders.map((order) => order.id),
      ]);
      return processed === orders.length ? true : undefined;
    },
    45_000,
    "every order's effect",
  );
  expect(
    await count(probeDb, "SELECT count(*) FROM effects WHERE order_id = ANY($1)", [orders.map((order) => order.id)]),
  ).toBe(orders.length);
  expect(await count(ordersDb, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")).toBe(0);
}, 90_000);

it("processes a burst in shared consumer transactions, and a poison message among them fails alone", async () => {
  const effectsFor = (ids: string[]) => count(probeDb, "SELECT count(*) FROM effects WHERE order_id = ANY($1)", [ids]);
  const allProcessed = (ids: string[], what: string) =>
    waitFor(
      async () => {
        const processed = await count(
          probeDb,
          "SELECT count(DISTINCT order_id) FROM effects WHERE order_id = ANY($1)",
          [ids],
        );
        return processed === ids.length ? true : undefined;
      },
      30_000,
      what,
    );
  // Published while the probe is down, so they wait in the stream and reach it together when it starts.
  await probe!.stop("SIGTERM");
  const burst = (await Promise.all(Array.from({ length: 40 }, (_, i) => placeOrder(`BURST-${i}`)))).map(
    (order) => order.id,
  );
  await startProbe();
  await allProcessed(burst, "every order's effect");
  expect(await effectsFor(burst)).toBe(burst.length);
  // Fewer transactions than messages: inbox rows written together carry their transaction's start time.
  const transactions = await count(
    probeDb,
    `SELECT count(DISTINCT i.processed_at) FROM inbox i JOIN effects e ON e.message_id = i.message_id
     WHERE e.order_id = ANY($1)`,
    [burst],
  );
  expect(transactions).toBeLessThan(burst.length);

  // A poison message in a burst: its batch is rolled back and run again one at a time, so only it fails.
  await probeDb.query("INSERT INTO faults VALUES ('BURST-POISON', 'poison')");
  await probe!.stop("SIGTERM");
  const poisoned = await placeOrder("BURST-POISON");
  const others = (await Promise.all(Array.from({ length: 10 }, (_, i) => placeOrder(`BURST-OTHER-${i}`)))).map(
    (order) => order.id,
  );
  await startProbe();
  await allProcessed(others, "the other orders' effects");
  expect(await effectsFor(others)).toBe(others.length);
  const entry = await waitFor(
    async () => (await deadLetters("group=probe&status=PENDING&search=BURST-POISON")).rows[0],
    20_000,
    "the poison message's dead letter",
  );
  expect(await effectsOf(poisoned.id)).toBe(0);
  await probeDb.query("DELETE FROM faults WHERE shipping_name = 'BURST-POISON'");
  expect((await send("POST", `/api/dlq/${entry.id}/replay`)).status).toBe(200);
  await waitForEffect(poisoned.id);
  expect(await effectsOf(poisoned.id)).toBe(1);
}, 120_000);

it("wakes the relay on a commit instead of polling: a row another process left unsent goes out within seconds", async () => {
  await producer.stop("SIGTERM");
  // The poll is ten minutes away: only the commit's notification can make the relay look in time.
  producer = await startProducer({ OUTBOX_POLL_INTERVAL: "600000" });
  api.token = await login(api.base);
  // The rounds of the start are over. A sleep, not a wait: no start round may be what publishes the row below.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const envelope = createEnvelope(
    "product.stockChanged",
    { product: { id: product.id, sku: product.sku, name: product.name, stock: 5000 } },
    { source: "products", correlationId: "relay-wake" },
  );
  // As a process that committed the row and died before publishing it would leave it.
  const written = Date.now();
  await ordersDb.query("INSERT INTO outbox (id, channel, envelope) VALUES ($1, $2, $3)", [
    envelope.id,
    envelope.type,
    JSON.stringify(envelope),
  ]);
  await waitFor(
    async () => {
      const { rows } = await ordersDb.query("SELECT sent_at FROM outbox WHERE id = $1", [envelope.id]);
      return rows[0].sent_at ? true : undefined;
    },
    10_000,
    "the relay to publish the row",
  );
  // The grace a publish from memory gets (1 s), then the round.
  expect(Date.now() - written).toBeLessThan(8000);
});
