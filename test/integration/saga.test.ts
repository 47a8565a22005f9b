/**
 * The order saga over a real NATS JetStream (this file's own nats-server, so it can restart it) and the real
 * PostgreSQL, with the saga engine, the participants and the gateway in three processes: every outcome of the test
 * payment methods and destinations, a parked saga resumed from the dead-letter queue, and kills of the saga node and
 * of a participant, and a NATS restart, under load, after which every saga has ended, the payments balance and only
 * the completed orders' stock stays taken.
 */
import { Client } from "pg";
import type { DeadLetterPage } from "../../contracts/dead-letters";
import { FINAL_ORDER_STATUSES, type Order } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import type { Saga } from "../../contracts/sagas";
import { cursorName, type Cursor } from "../../lib/saga";
import { loadConfig } from "../../lib/config";
import { sagaDefinitions } from "../../sagas";
import { gatewayClient, type GatewayTarget, login, type OrderOptions } from "../../support/api";
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
import { expectSagasBalanced } from "../support/saga-balance";

const scope = isolation();
let nats: NatsServer;
let env: Record<string, string>;
let gateway: NodeProcess;
let participants: NodeProcess;
let sagaNode: NodeProcess;
let gatewayPort: number;
let product: Product;
const db: Record<"payments" | "shipping" | "sagas" | "orders" | "products", Client> = {} as never;

const orderSaga = sagaDefinitions(loadConfig({}).saga).order;

const scopedUrl = (database: string) => scopedDatabaseUrl(scope.prefix, database);

const startGateway = () =>
  startNodeProcess({ ...env, SERVICES: "api,auth,products,orders,dlq", NODE_ID: "gateway", PORT: String(gatewayPort) });
const startParticipants = () => startNodeProcess({ ...env, SERVICES: "payments,shipping", NODE_ID: "participants" });
const startSagaNode = () => startNodeProcess({ ...env, SERVICES: "sagas", NODE_ID: "saga-node" });

const api: GatewayTarget = { base: "", token: "" };
const { send, placeOrder, orderOf, settled } = gatewayClient(api);

const outcomes = (saga: Saga) => saga.timeline!.map((entry) => `${entry.step}:${entry.outcome}`);

async function paymentsOf(orderId: string) {
  return (await db.payments.query("SELECT status, amount FROM payments WHERE order_id = $1", [orderId])).rows;
}

/** The invariants of every run (test/support/saga-balance.ts) over this suite's databases. */
const expectBalanced = (orders: Order[]) =>
  expectSagasBalanced(
    db,
    orders.map((order) => order.id),
  );

beforeAll(async () => {
  nats = await startNats();
  env = nodeEnv(scope, {
    TRANSPORTER: nats.url,
    DELIVERY_ACK_WAIT: "2000",
    DELIVERY_RETRY_DELAY: "200",
    SAGA_STEP_TIMEOUT: "1000",
    // One attempt to spare beyond what the flaky card needs: on two busy cores a step can time out under load.
    SAGA_STEP_ATTEMPTS: "3",
    SAGA_RETRY_DELAY: "100",
    SAGA_COMPENSATION_ATTEMPTS: "3",
    SAGA_WAIT_UNAVAILABLE: "1000",
    SAGA_MAX_WAITS: "5",
    // A killed saga node's sagas are taken over this long after its last renewal.
    SAGA_LEASE: "2000",
    PAYMENTS_SLOW_MS: "1500",
    PAYMENTS_FLAKY_FAILURES: "2",
  });
  gatewayPort = await freePort();
  [gateway, participants, sagaNode] = await Promise.all([startGateway(), startParticipants(), startSagaNode()]);
  api.base = `http://127.0.0.1:${gatewayPort}`;
  api.token = await login(api.base);
  const res = await send("POST", "/api/products", {
    sku: "SAGA-1",
    name: "Saga widget",
    price: { amount: 700, currency: "EUR" },
    stock: 1_000_000,
  });
  expect(res.status).toBe(201);
  product = await json<Product>(res);
  for (const name of ["payments", "shipping", "sagas", "orders", "products"] as const) {
    db[name] = new Client({ connectionString: scopedUrl(name) });
    await db[name].connect();
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(Object.values(db).map((client) => client.end()));
  await Promise.all([gateway?.stop("SIGKILL"), participants?.stop("SIGKILL"), sagaNode?.stop("SIGKILL")]);
  await nats?.stop();
  await dropScopeDatabases(scope.prefix);
});

describe("outcomes", () => {
  it("completes a paid and shipped order", async () => {
    const order = await settled((await placeOrder(product.id, "HAPPY")).id);
    expect(order.status).toBe("COMPLETED");
    expect(order.saga).toMatchObject({ status: "COMPLETED", completedSteps: 6, reason: null });
    // The suite's first saga may start before the saga node has discovered a participant's node (the three start
    // together): it then waits for it (`stock:unavailable`) instead of failing, which is not an outcome.
    const waitedOut = outcomes(order.saga!).filter((outcome) => !outcome.endsWith(":unavailable"));
    expect(waitedOut).toEqual([
      "start:started",
      "stock:ok",
      "payment:ok",
      "markPaid:ok",
      "shipping:ok",
      "commitStock:ok",
      "markShipped:ok",
      "finish:completed:ok",
    ]);
    expect(await paymentsOf(order.id)).toEqual([{ status: "CHARGED", amount: "700" }]);
    const { rows } = await db.shipping.query("SELECT status FROM shipments WHERE order_id = $1", [order.id]);
    expect(rows).toEqual([{ status: "CREATED" }]);
  });

  it("cancels an order whose payment is declined, with the reason, releases its stock and refunds nothing", async () => {
    const order = await settled((await placeOrder(product.id, "DECLINED", { paymentMethod: "pm_card_declined" })).id);
    expect(order).toMatchObject({ status: "CANCELLED", statusReason: "Payment declined: card declined" });
    expect(order.saga!.status).toBe("COMPENSATED");
    expect(outcomes(order.saga!)).toEqual([
      "start:started",
      "stock:ok",
      "payment:rejected",
      "stock:compensate:ok",
      "finish:compensated:ok",
    ]);
    expect(await paymentsOf(order.id)).toEqual([{ status: "DECLINED", amount: "700" }]);
  });

  it("refunds the payment when shipping fails after it, and the order ends COMPENSATED", async () => {
    const order = await settled((await placeOrder(product.id, "NOWHERE", { country: "ZZ" })).id);
    expect(order).toMatchObject({ status: "COMPENSATED", statusReason: "No shipping to ZZ" });
    expect(outcomes(order.saga!)).toEqual([
      "start:started",
      "stock:ok",
      "payment:ok",
      "markPaid:ok",
      "shipping:rejected",
      "payment:compensate:ok",
      "stock:compensate:ok",
      "finish:compensated:ok",
    ]);
    expect(await paymentsOf(order.id)).toEqual([{ status: "REFUNDED", amount: "700" }]);
  });

  it("retries a payment that times out, then compensates; the late charge is refunded or refused", async () => {
    const order = await settled((await placeOrder(product.id, "SLOW", { paymentMethod: "pm_card_slow" })).id);
    expect(order.status).toBe("CANCELLED");
    expect(order.statusReason).toMatch(/^payment failed after 3 attempt\(s\): Request is timed out/);
    expect(outcomes(order.saga!)).toEqual([
      "start:started",
      "stock:ok",
      "payment:transient",
      "payment:transient",
      "payment:transient",
      "payment:compensate:ok",
      "stock:compensate:ok",
      "finish:compensated:ok",
    ]);
    // The provider answers every call late; once the late calls are done, no charge stands. A sleep, not a wait: the
    // late answers must come and leave no charge standing.
    await new Promise((resolve) => setTimeout(resolve, 3500));
    const payments = await paymentsOf(order.id);
    expect(payments).toHaveLength(1);
    expect(["REFUNDED", "VOIDED"]).toContain(payments[0].status);
  });

  it("charges a flaky payment once, after the provider's transient failures", async () => {
    const order = await settled((await placeOrder(product.id, "FLAKY", { paymentMethod: "pm_card_flaky" })).id);
    expect(order.status).toBe("COMPLETED");
    expect(await paymentsOf(order.id)).toEqual([{ status: "CHARGED", amount: "700" }]);
    const { rows } = await db.payments.query("SELECT calls FROM provider_calls WHERE charge_key LIKE $1", [
      `${order.saga!.id}:%`,
    ]);
    expect(rows).toEqual([{ calls: 3 }]);
  });

  it("parks a saga whose refund keeps failing, and resumes it when its dead letter is replayed", async () => {
    expect((await send("POST", "/api/payments/refund-outage", { durationMs: 600_000 })).status).toBe(200);
    const placed = await placeOrder(product.id, "PARKED", { country: "ZZ" });
    const parked = await waitFor(
      async () => {
        const order = await orderOf(placed.id);
        return order.saga?.status === "FAILED" ? order : undefined;
      },
      30_000,
      "the saga to park",
    );
    expect(parked.saga).toMatchObject({ step: "payment:compensate", attempt: 3 });
    expect(parked.saga!.reason).toContain("payment:compensate failed after 3 attempt(s)");
    expect(parked.status).toBe("PAID");
    const entry = await waitFor(
      async () => (await json<DeadLetterPage>(await send("GET", "/api/dlq?group=sagas&status=PENDING"))).rows[0],
      15_000,
      "the saga's dead letter",
    );
    expect(entry).toMatchObject({ channel: "saga.stepDue", error: { type: "SAGA_PARKED" }, replayable: true });

    expect((await send("POST", "/api/payments/refund-outage", { durationMs: 0 })).status).toBe(200);
    expect((await send("POST", `/api/dlq/${entry.id}/replay`)).status).toBe(200);
    const resumed = await settled(placed.id);
    expect(resumed).toMatchObject({ status: "COMPENSATED", saga: { status: "COMPENSATED" } });
    expect(outcomes(resumed.saga!).slice(-4)).toEqual([
      "payment:compensate:resumed",
      "payment:compensate:ok",
      "stock:compensate:ok",
      "finish:compensated:ok",
    ]);
    expect(await paymentsOf(placed.id)).toEqual([{ status: "REFUNDED", amount: "700" }]);
    // Replaying again finds nothing to resume: the saga has moved on.
    expect((await send("POST", `/api/sagas/${resumed.saga!.id}/retry`)).status).toBe(409);
  });
});

/** Polls the saga of an order until its current action is `step` (the previous one committed). */
async function sagaReaches(orderId: string, step: { phase: string; step: number }) {
  await waitFor(
    async () => {
      const { rows } = await db.sagas.query<{ cursor: { phase: string; step: number } }>(
        "SELECT cursor FROM sagas WHERE subject_id = $1",
        [orderId],
      );
      const cursor = rows[0]?.cursor;
      return cursor?.phase === step.phase && cursor.step === step.step ? true : undefined;
    },
    20_000,
    `the saga of ${orderId} to reach ${JSON.stringify(step)}`,
  );
}

describe("crashes", () => {
  it("ends every saga whose node died at each step boundary, forward and compensating, and one killed mid-step", async () => {
    // Each boundary is the moment a checkpoint has committed and the next action has not been called: the node kills
    // itself there (lib/failpoints.ts), since a kill timed from outside misses a window of milliseconds.
    const completed = { status: "COMPLETED", saga: { status: "COMPLETED" } };
    const boundaries: { step: string; options?: OrderOptions; ends: object }[] = [
      { step: "stock", ends: completed },
      { step: "payment", ends: completed },
      { step: "markPaid", ends: completed },
      { step: "shipping", ends: completed },
      { step: "commitStock", ends: completed },
      { step: "markShipped", ends: completed },
      { step: "finish:completed", ends: completed },
      {
        step: "payment:compensate",
        options: { country: "ZZ" },
        ends: { status: "COMPENSATED", saga: { status: "COMPENSATED" } },
      },
      {
        step: "stock:compensate",
        options: { paymentMethod: "pm_card_declined" },
        ends: { status: "CANCELLED", saga: { status: "COMPENSATED" } },
      },
      {
        step: "finish:compensated",
        options: { paymentMethod: "pm_card_declined" },
        ends: { status: "CANCELLED", saga: { status: "COMPENSATED" } },
      },
    ];
    const orders: Order[] = [];
    for (const boundary of boundaries) {
      await sagaNode.stop("SIGTERM");
      sagaNode = await startNodeProcess({
        ...env,
        SERVICES: "sagas",
        NODE_ID: "saga-node",
        FAILPOINTS: `saga.committed:${boundary.step}`,
      });
      const order = await placeOrder(product.id, `BOUNDARY-${boundary.step}`, boundary.options);
      orders.push(order);
      expect(await crashed(sagaNode)).toBe("SIGKILL");
      // What the node left: the saga at the boundary, still held by the dead node's lease, which nothing renews.
      const { rows } = await db.sagas.query<{ cursor: Cursor; lease_owner: string | null }>(
        "SELECT cursor, lease_owner FROM sagas WHERE subject_id = $1",
        [order.id],
      );
      expect(rows).toHaveLength(1);
      expect({ step: cursorName(orderSaga, rows[0].cursor), owner: rows[0].lease_owner }).toEqual({
        step: boundary.step,
        owner: expect.stringMatching(/^saga-node\//),
      });
      sagaNode = await startSagaNode();
      const ended = await settled(order.id);
      expect(ended).toMatchObject(boundary.ends);
      // The new node took it over once the dead one's lease ran out, at the step it was at.
      expect(outcomes(ended.saga!)).toContain(`${boundary.step}:swept`);
    }
    // Mid-step: the provider is still working on the charge when the node dies.
    const slow = await placeOrder(product.id, "MID-STEP", { paymentMethod: "pm_card_slow" });
    orders.push(slow);
    await sagaReaches(slow.id, { phase: "forward", step: 1 });
    // Into the provider's slow answer, so the kill lands mid-step.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await sagaNode.stop("SIGKILL");
    sagaNode = await startSagaNode();
    expect(await settled(slow.id)).toMatchObject({ status: "CANCELLED", saga: { status: "COMPENSATED" } });
    // A sleep, not a wait: time for a late answer or a redelivered step of the dead node, which must change nothing.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await expectBalanced(orders);
  }, 240_000);

  it("ends every saga after the saga node is killed at random moments, again and again", async () => {
    const orders: Order[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 8; i++) {
        const options: OrderOptions = [{}, { country: "ZZ" }, {}, { paymentMethod: "pm_card_declined" }][i % 4];
        orders.push(await placeOrder(product.id, `KILL-SAGA-${round}-${i}`, options));
      }
      // Kill it while those sagas are between and inside their steps, then bring it back.
      await new Promise((resolve) => setTimeout(resolve, 300 + round * 400));
      await sagaNode.stop("SIGKILL");
      sagaNode = await startSagaNode();
    }
    for (const order of orders) await settled(order.id, { timeoutMs: 60_000 });
    // A sleep, not a wait: time for redelivered steps of the killed nodes, which must change nothing.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await expectBalanced(orders);
  }, 150_000);

  it("shares the sagas between two engines, and when one is killed under load the other ends its sagas once", async () => {
    const second = await startNodeProcess({ ...env, SERVICES: "sagas", NODE_ID: "saga-node-2" });
    let killed = false;
    try {
      const mix: OrderOptions[] = [{}, {}, { paymentMethod: "pm_card_declined" }, { country: "ZZ" }];
      // Half-way, slow payments (each step times out, then compensates): sagas certain to be in flight at the kill.
      const slow: OrderOptions = { paymentMethod: "pm_card_slow" };
      const orders: Order[] = [];
      const owners = new Set<string>();
      for (let batch = 0; batch < 8; batch++) {
        const placed = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            placeOrder(product.id, `TWO-ENGINES-${batch}-${i}`, batch === 4 ? slow : mix[i % mix.length]),
          ),
        );
        orders.push(...placed);
        const { rows } = await db.sagas.query<{ owner: string }>(
          "SELECT DISTINCT split_part(lease_owner, '/', 1) AS owner FROM sagas WHERE lease_owner IS NOT NULL",
        );
        for (const row of rows) owners.add(row.owner);
        if (batch === 4) {
          // The first engine dies while it holds sagas.
          await waitFor(
            async () => {
              const { rows: held } = await db.sagas.query<{ count: number }>(
                "SELECT count(*)::int AS count FROM sagas WHERE lease_owner LIKE 'saga-node/%' AND subject_id = ANY($1)",
                [placed.map((order) => order.id)],
              );
              return held[0].count > 0 ? true : undefined;
            },
            10_000,
            "the first engine to hold a slow saga",
          );
          await sagaNode.stop("SIGKILL");
          killed = true;
        }
      }
      // Both engines ran sagas (JetStream shares the start events between the group's two consumers).
      expect([...owners].sort()).toEqual(["saga-node", "saga-node-2"]);
      for (const order of orders) await settled(order.id, { timeoutMs: 60_000 });
      // A sleep, not a wait: time for redelivered steps of the killed engine, which must change nothing.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await expectBalanced(orders);
      // No step ran twice to an outcome: each saga's timeline has every step's success once at most.
      const { rows: repeated } = await db.sagas.query(
        `SELECT s.subject_id, e.step, count(*)::int AS times FROM saga_events e JOIN sagas s ON s.id = e.saga_id
         WHERE s.subject_id = ANY($1) AND e.outcome = 'ok' GROUP BY s.subject_id, e.step HAVING count(*) > 1`,
        [orders.map((order) => order.id)],
      );
      expect(repeated).toEqual([]);
      // The dead engine's sagas were taken over by the live one once its lease ran out.
      const { rows: swept } = await db.sagas.query<{ count: number }>(
        `SELECT count(DISTINCT e.saga_id)::int AS count FROM saga_events e JOIN sagas s ON s.id = e.saga_id
         WHERE s.subject_id = ANY($1) AND e.outcome = 'swept'`,
        [orders.map((order) => order.id)],
      );
      expect(swept[0].count).toBeGreaterThan(0);
    } finally {
      await second.stop("SIGTERM");
      if (killed) sagaNode = await startSagaNode();
    }
  }, 150_000);

  it("ends every saga after a participant is killed mid-call", async () => {
    const orders: Order[] = [];
    for (let i = 0; i < 10; i++)
      orders.push(await placeOrder(product.id, `KILL-PARTICIPANT-${i}`, i % 3 ? {} : { country: "ZZ" }));
    await participants.stop("SIGKILL");
    for (let i = 0; i < 5; i++) orders.push(await placeOrder(product.id, `WHILE-DOWN-${i}`));
    participants = await startParticipants();
    for (const order of orders) await settled(order.id, { timeoutMs: 60_000 });
    const statuses = await expectBalanced(orders);
    expect(statuses.filter((row) => row.status === "COMPLETED").length).toBeGreaterThan(0);
  }, 120_000);

  it("runs several hundred orders with mixed outcomes through a NATS restart and a saga node kill", async () => {
    const mix: OrderOptions[] = [
      {},
      {},
      {},
      { paymentMethod: "pm_card_declined" },
      { country: "ZZ" },
      { paymentMethod: "pm_card_flaky" },
    ];
    const orders: Order[] = [];
    for (let i = 0; i < 240; i++) {
      orders.push(await placeOrder(product.id, `LOAD-${i}`, mix[i % mix.length]));
      if (i === 80) await nats.restart();
      if (i === 160) {
        await sagaNode.stop("SIGKILL");
        sagaNode = await startSagaNode();
      }
    }
    await waitFor(
      async () => {
        const { rows } = await db.orders.query<{ count: string }>(
          "SELECT count(*) FROM orders WHERE id = ANY($1) AND status = ANY($2)",
          [orders.map((order) => order.id), FINAL_ORDER_STATUSES],
        );
        return Number(rows[0].count) === orders.length ? true : undefined;
      },
      150_000,
      "every order to end",
    );
    await waitFor(
      async () => {
        const { rows } = await db.sagas.query<{ count: string }>(
          "SELECT count(*) FROM sagas WHERE subject_id = ANY($1) AND status IN ('COMPLETED', 'COMPENSATED')",
          [orders.map((order) => order.id)],
        );
        return Number(rows[0].count) === orders.length ? true : undefined;
      },
      30_000,
      "every saga to end",
    );
    await expectBalanced(orders);
    // Plain and flaky payments complete; declined ones are cancelled; ZZ is compensated. A mismatch names the
    // order and its saga's timeline, so a failure says which fault pushed it elsewhere.
    const expected = ["COMPLETED", "COMPLETED", "COMPLETED", "CANCELLED", "COMPENSATED", "COMPLETED"];
    const { rows } = await db.orders.query<{ id: string; status: string }>(
      "SELECT id, status FROM orders WHERE id = ANY($1)",
      [orders.map((order) => order.id)],
    );
    const statusOf = new Map(rows.map((row) => [row.id, row.status]));
    const mismatches = orders.filter((order, i) => statusOf.get(order.id) !== expected[i % expected.length]);
    const explained = await Promise.all(
      mismatches.map(async (order) => ({
        order: order.id,
        status: statusOf.get(order.id),
        saga: (await orderOf(order.id)).saga,
      })),
    );
    expect(explained).toEqual([]);
  }, 300_000);
});
