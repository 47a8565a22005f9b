/**
 * orders on a real primary with a real streaming replica: list and get are served by the replica (its sessions ran
 * the list query, the primary's did not) while writes land on the primary, without ever reading older data than one's own
 * last write; ownership; cancellation; Idempotency-Key; bad input leaves the database unchanged.
 */
import { Client } from "pg";
import type { ServiceSchema } from "moleculer";
import { replicaUrlFor } from "../../lib/database";
import type { Order, OrderPage } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { startReplicatedPostgres, type ReplicatedPostgres } from "../support/replica";
import { registerCustomer } from "../../support/api";
import { type ErrorBody, json, waitFor } from "../../support/nodes";
import { withNode } from "../support/suite";

let servers: ReplicatedPostgres;
let primary: Client;
let replica: Client;
const tokens: Record<string, string> = {};
const products: Product[] = [];
const createdEvents: Order[] = [];

/** Consumes the `order.created` channel as the saga will. */
const eventProbe: ServiceSchema = {
  name: "order-events-probe",
  channels: {
    "order.created": {
      group: "probe",
      handler(envelope: { payload: { order: Order } }) {
        createdEvents.push(envelope.payload.order);
      },
    },
  },
};

// Declared before the node, so the servers are up when it starts.
beforeAll(async () => {
  servers = await startReplicatedPostgres();
});
const node = withNode(
  () => ({
    SERVICES: "api,auth,products,orders",
    DATABASE_URL: servers.primaryUrl,
    DATABASE_REPLICA_URL: servers.replicaUrl,
    // No saga engine here, so orders stay PENDING: not sent again during the suite (that would scan the primary).
    SAGA_STALL_AFTER: "86400000",
  }),
  { services: [eventProbe] },
);
const { send } = node;
// Declared after the node, so it runs once the node has stopped.
afterAll(async () => {
  await replica?.end();
  await servers?.stop();
});

const orderBody = (quantity = 2) => ({
  items: [
    { productId: products[0].id, quantity },
    { productId: products[1].id, quantity: 1 },
  ],
  shippingAddress: {
    name: "Ada Lovelace",
    street: "1 Analytical Way",
    city: "London",
    postalCode: "N1 1AA",
    country: "GB",
  },
  paymentMethod: "pm_card_ok",
});

/** Scans of the orders table this server has counted (a hot standby counts the reads it serves itself). */
async function ordersScans(client: Client): Promise<number> {
  await client.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await client.query<{ scans: number }>(
    "SELECT (seq_scan + coalesce(idx_scan, 0))::int AS scans FROM pg_stat_user_tables WHERE relname = 'orders'",
  );
  return rows[0]?.scans ?? 0;
}

async function orderCount(): Promise<number> {
  return Number((await primary.query<{ count: string }>("SELECT count(*) FROM orders")).rows[0].count);
}

beforeAll(async () => {
  primary = await node.database("orders");
  replica = new Client({ connectionString: replicaUrlFor("orders", node.cfg)! });
  await replica.connect();
  for (const [sku, amount] of [
    ["ORD-A", 1250],
    ["ORD-B", 499],
  ] as const) {
    products.push(await node.createProduct({ sku, name: sku, price: { amount, currency: "EUR" }, stock: 100 }));
  }
  tokens.ada = await registerCustomer(node.base, "ada@orders.example");
  tokens.bob = await registerCustomer(node.base, "bob@orders.example");
});

it("places an order with captured prices, publishes order.created through the outbox, and reads it back at once", async () => {
  const res = await send("POST", "/api/orders", orderBody(), tokens.ada);
  expect(res.status).toBe(201);
  const order = await json<Order>(res);
  expect(order).toMatchObject({
    status: "PENDING",
    total: { amount: 2 * 1250 + 499, currency: "EUR" },
    paymentMethod: "pm_card_ok",
    lines: [
      { productId: products[0].id, sku: "ORD-A", quantity: 2, unitPrice: { amount: 1250, currency: "EUR" } },
      { productId: products[1].id, sku: "ORD-B", quantity: 1, unitPrice: { amount: 499, currency: "EUR" } },
    ],
  });
  expect(res.headers.get("location")).toBe(`/api/orders/${order.id}`);
  const read = await send("GET", `/api/orders/${order.id}`, undefined, tokens.ada);
  expect(read.status).toBe(200);
  // No sagas service on this node: the order comes without one.
  expect(await json<Order>(read)).toEqual({ ...order, saga: null });
  await waitFor(
    async () => (createdEvents.some((event) => event.id === order.id) ? true : undefined),
    5000,
    "order.created",
  );
});

it("serves list queries from the replica while writes land on the primary", async () => {
  expect((await replica.query("SELECT pg_is_in_recovery() AS standby")).rows).toEqual([{ standby: true }]);
  // A backend reports its statistics when idle, but at most once a second and otherwise within PostgreSQL's idle
  // interval (10 s): let what earlier tests did settle before counting, and wait as long again for these reads. A
  // sleep, not a wait: the primary must show no scan, and a scan it did would be reported that late.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 11_000));
  await settle();
  const before = { replica: await ordersScans(replica), primary: await ordersScans(primary) };
  for (let i = 0; i < 5; i++) expect((await send("GET", "/api/orders")).status).toBe(200);
  await settle();
  // Each list request scans orders (the page with its count, one statement), on the replica only.
  expect((await ordersScans(replica)) - before.replica).toBeGreaterThanOrEqual(5);
  expect((await ordersScans(primary)) - before.primary).toBe(0);

  const created = await json<Order>(await send("POST", "/api/orders", orderBody(1), tokens.ada));
  const onPrimary = await primary.query("SELECT status FROM orders WHERE id = $1", [created.id]);
  expect(onPrimary.rows).toEqual([{ status: "PENDING" }]);
});

it("never shows a customer a stale status after their own change", async () => {
  for (let i = 0; i < 10; i++) {
    const order = await json<Order>(await send("POST", "/api/orders", orderBody(1), tokens.ada));
    const cancelled = await send("POST", `/api/orders/${order.id}/cancel`, {}, tokens.ada);
    expect(cancelled.status).toBe(200);
    expect(await json<Order>(await send("GET", `/api/orders/${order.id}`, undefined, tokens.ada))).toMatchObject({
      status: "CANCELLED",
    });
    const list = await json<OrderPage>(
      await send("GET", "/api/orders?status=CANCELLED&pageSize=100", undefined, tokens.ada),
    );
    expect(list.rows.map((row) => row.id)).toContain(order.id);
  }
});

it("reads a customer's own writes from the primary while the replica lags behind them", async () => {
  // The replica stops replaying WAL: everything written from now on is missing there until it resumes.
  await replica.query("SELECT pg_wal_replay_pause()");
  try {
    const order = await json<Order>(await send("POST", "/api/orders", orderBody(1), tokens.ada));
    expect((await replica.query("SELECT 1 FROM orders WHERE id = $1", [order.id])).rowCount).toBe(0);
    const read = await send("GET", `/api/orders/${order.id}`, undefined, tokens.ada);
    expect(read.status).toBe(200);
    expect(await json<Order>(read)).toMatchObject({ id: order.id, status: "PENDING" });
    expect((await send("POST", `/api/orders/${order.id}/cancel`, {}, tokens.ada)).status).toBe(200);
    expect(await json<Order>(await send("GET", `/api/orders/${order.id}`, undefined, tokens.ada))).toMatchObject({
      status: "CANCELLED",
    });
    const list = await json<OrderPage>(
      await send("GET", "/api/orders?status=CANCELLED&pageSize=100", undefined, tokens.ada),
    );
    expect(list.rows.map((row) => row.id)).toContain(order.id);
    // Still not on the replica: the answers above came from the primary.
    expect((await replica.query("SELECT 1 FROM orders WHERE id = $1", [order.id])).rowCount).toBe(0);
  } finally {
    await replica.query("SELECT pg_wal_replay_resume()");
  }
});

it("shows customers only their own orders; operators and admins see all", async () => {
  const bobs = await json<Order>(await send("POST", "/api/orders", orderBody(1), tokens.bob));
  expect((await send("GET", `/api/orders/${bobs.id}`, undefined, tokens.ada)).status).toBe(404);
  const adaList = await json<OrderPage>(await send("GET", "/api/orders?pageSize=100", undefined, tokens.ada));
  expect(adaList.rows.every((row) => row.customerId === adaList.rows[0].customerId)).toBe(true);
  expect(adaList.rows.map((row) => row.id)).not.toContain(bobs.id);
  const all = await json<OrderPage>(await send("GET", `/api/orders?customerId=${bobs.customerId}`));
  expect(all.rows.map((row) => row.id)).toEqual([bobs.id]);
  expect((await send("POST", `/api/orders/${bobs.id}/cancel`, {}, tokens.ada)).status).toBe(404);
});

it("cancels only while PENDING", async () => {
  const order = await json<Order>(await send("POST", "/api/orders", orderBody(1), tokens.bob));
  expect((await send("POST", `/api/orders/${order.id}/cancel`, { reason: "changed my mind" }, tokens.bob)).status).toBe(
    200,
  );
  const again = await send("POST", `/api/orders/${order.id}/cancel`, {}, tokens.bob);
  expect(again.status).toBe(409);
  expect(await json<ErrorBody>(again)).toMatchObject({ data: { reason: "INVALID_TRANSITION", from: "CANCELLED" } });
});

describe("Idempotency-Key", () => {
  it("returns the same order for the same key and body, and 422 for another body", async () => {
    const first = await send("POST", "/api/orders", orderBody(3), tokens.ada, { "Idempotency-Key": "key-1" });
    const second = await send("POST", "/api/orders", orderBody(3), tokens.ada, { "Idempotency-Key": "key-1" });
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect((await json<Order>(second)).id).toBe((await json<Order>(first)).id);
    const other = await send("POST", "/api/orders", orderBody(4), tokens.ada, { "Idempotency-Key": "key-1" });
    expect(other.status).toBe(422);
    expect(await json<ErrorBody>(other)).toMatchObject({
      data: [{ field: "Idempotency-Key", type: "idempotencyKeyReused" }],
    });
  });

  it("makes one order of 20 concurrent requests with one key", async () => {
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        send("POST", "/api/orders", orderBody(5), tokens.bob, { "Idempotency-Key": "burst-1" }),
      ),
    );
    // One created it (201); the others found it, whether before or after losing the race to insert (200).
    expect(responses.map((res) => res.status).sort()).toEqual([...Array(19).fill(200), 201]);
    const ids = new Set(await Promise.all(responses.map(async (res) => (await json<Order>(res)).id)));
    expect(ids.size).toBe(1);
    const { rows } = await primary.query("SELECT count(*)::int AS count FROM orders WHERE idempotency_key = 'burst-1'");
    expect(rows).toEqual([{ count: 1 }]);
    // The requests that lost the race wrote nothing else either: no lines, event or audit record of an order that
    // does not exist, and the order that does has one of each.
    const [id] = ids;
    const written = await primary.query(
      `SELECT (SELECT count(*)::int FROM order_lines WHERE order_id = $1::uuid) AS lines,
              (SELECT count(*)::int FROM outbox WHERE channel = 'order.created'
                 AND envelope->'payload'->'order'->>'id' = $1::text) AS events,
              (SELECT count(*)::int FROM outbox WHERE channel = 'audit.recorded'
                 AND envelope->'payload'->'entity'->>'id' = $1::text
                 AND envelope->'payload'->>'name' = 'orders.create') AS records,
              (SELECT count(*)::int FROM outbox WHERE (channel = 'order.created'
                   AND (envelope->'payload'->'order'->>'id')::uuid NOT IN (SELECT id FROM orders))
                 OR (channel = 'audit.recorded' AND envelope->'payload'->>'name' = 'orders.create'
                   AND (envelope->'payload'->'entity'->>'id')::uuid NOT IN (SELECT id FROM orders))) AS orphans`,
      [id],
    );
    expect(written.rows).toEqual([{ lines: orderBody(5).items.length, events: 1, records: 1, orphans: 0 }]);
  });
});

describe("bad input changes nothing", () => {
  const cases: [string, () => unknown, string[]][] = [
    ["missing fields", () => ({}), ["items", "shippingAddress", "paymentMethod"]],
    ["wrong types", () => ({ ...orderBody(), items: "all of them" }), ["items"]],
    [
      "a negative quantity",
      () => ({ ...orderBody(), items: [{ productId: "5f0c2c8e-4a7a-4a51-9b2a-7f0b4f4f4f4f", quantity: -1 }] }),
      ["items[0].quantity"],
    ],
    [
      "an unknown product",
      () => ({ ...orderBody(), items: [{ productId: "5f0c2c8e-4a7a-4a51-9b2a-7f0b4f4f4f4f", quantity: 1 }] }),
      ["items[0].productId"],
    ],
    [
      "more than the product has in stock",
      () => ({ ...orderBody(), items: [{ productId: products[0].id, quantity: 101 }] }),
      ["items[0].quantity"],
    ],
    [
      "lines of one product that together exceed its stock",
      () => ({
        ...orderBody(),
        items: [
          { productId: products[0].id, quantity: 60 },
          { productId: products[0].id, quantity: 60 },
        ],
      }),
      ["items[0].quantity", "items[1].quantity"],
    ],
    [
      "a country that is not ISO",
      () => ({ ...orderBody(), shippingAddress: { ...orderBody().shippingAddress, country: "England" } }),
      ["shippingAddress.country"],
    ],
    [
      "SQL in the payment method",
      () => ({ ...orderBody(), paymentMethod: "pm_x'; DROP TABLE orders; --" }),
      ["paymentMethod"],
    ],
  ];
  it.each(cases)("answers 422 for %s", async (_case, body, fields) => {
    const before = await orderCount();
    const res = await send("POST", "/api/orders", body(), tokens.ada);
    expect(res.status).toBe(422);
    const problems = (await json<ErrorBody>(res)).data as { field: string }[];
    expect(problems.map((problem) => problem.field).sort()).toEqual([...fields].sort());
    expect(await orderCount()).toBe(before);
  });

  it.each([
    ["pageSize=1000", "pageSize"],
    ["status=PENDING';--", "status"],
    ["customerId=1 OR 1=1", "customerId"],
  ])("answers 422 for ?%s", async (query, field) => {
    const res = await send("GET", `/api/orders?${query}`);
    expect(res.status).toBe(422);
    expect(((await json<ErrorBody>(res)).data as { field: string }[]).map((problem) => problem.field)).toEqual([field]);
  });

  it("refuses orders from callers without orders:create", async () => {
    const res = await send("POST", "/api/orders", orderBody(), "not-a-token");
    expect(res.status).toBe(401);
  });
});
