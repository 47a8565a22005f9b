/**
 * Nothing strands a saga, on one node with the real PostgreSQL, over in-memory channels and over JetStream:
 * - an `order.created` the outbox marked sent but that never reached the bus (the drop point
 *   `outbox.drop:order.created`, as a JetStream that acknowledged and then lost it): the orders service sends it
 *   again once the order has stayed PENDING for SAGA_STALL_AFTER, and the saga runs;
 * - a saga whose engine died (its lease ran out, nothing renews it): shown stalled with its last owner, then taken
 *   over by this node's sweeper at the step it was at, with a `swept` entry;
 * - a saga waiting out a long retry backoff under a live lease is never stalled and never taken over.
 *
 * The drop point loses the first two `order.created` of the node: the first two orders' (the second's is sent again,
 * once), so the tests run in this order.
 */
import type { Client } from "pg";
import { sagaCommand } from "../../bin/repl-commands";
import type { Product } from "../../contracts/products";
import type { Saga, SagaPage } from "../../contracts/sagas";
import { deterministicId } from "../../lib/delivery";
import { initialState } from "../../lib/saga";
import { loadConfig } from "../../lib/config";
import { sagaDefinitions } from "../../sagas";
import type { OrderOptions } from "../../support/api";
import { json, testNatsUrl, waitFor } from "../../support/nodes";
import { withNode } from "../support/suite";

const STALL_AFTER_MS = 4000;
const LEASE_MS = 1500;

describe.each([
  ["in-memory channels", {}],
  ["JetStream", { TRANSPORTER: testNatsUrl() }],
])("over %s", (_wiring, transport: Record<string, string>) => {
  const node = withNode({
    ...transport,
    SERVICES: "api,auth,products,orders,audit,payments,shipping,sagas",
    FAILPOINTS: "outbox.drop:order.created,outbox.drop:order.created",
    SAGA_STALL_AFTER: String(STALL_AFTER_MS),
    SAGA_LEASE: String(LEASE_MS),
    SAGA_SWEEP_INTERVAL: "200",
    // A retry waits 5 s, far past the lease: only the renewals keep its saga held.
    SAGA_RETRY_DELAY: "5000",
    PAYMENTS_FLAKY_FAILURES: "2",
  });
  const { send, orderOf } = node;
  let product: Product;
  let sagasDb: Client;
  let ordersDb: Client;

  const placeOrder = (tag: string, options: OrderOptions = {}) => node.placeOrder(product.id, tag, options);

  const sagaOf = async (orderId: string) => (await orderOf(orderId)).saga ?? undefined;

  const stalledIds = async () =>
    (await json<SagaPage>(await send("GET", "/api/sagas?stalled=true"))).rows.map((saga) => saga.id);

  const sweptCount = () =>
    (node.broker.metrics.getMetric("aicunet.sagas.swept")?.get({ definition: "order" })?.value as number | undefined) ??
    0;

  const steps = (saga: Saga) => saga.timeline!.map((entry) => `${entry.step}:${entry.outcome}`);

  beforeAll(async () => {
    product = await node.createProduct({
      sku: "SWEEP-1",
      name: "Sweep",
      price: { amount: 700, currency: "EUR" },
      stock: 1000,
    });
    sagasDb = await node.database("sagas");
    ordersDb = await node.database("orders");
  });

  it("shows a saga whose engine died as stalled, then takes it over at the step it was at, and it ends", async () => {
    const sweptBefore = sweptCount();
    // The first order's event is lost; the saga it would have started is written here as an engine that died
    // would leave it: RUNNING at its first step, held by a lease that ran out. (Its order is PAID long before the
    // orders service would send its event again; a late one would find the saga and start nothing.)
    const placed = await placeOrder("ORPHAN");
    const definition = sagaDefinitions(loadConfig({}).saga).order;
    const sagaId = deterministicId("saga", "order", placed.id);
    // A lock of the test's own keeps the sweeper (FOR UPDATE SKIP LOCKED) off the saga while the test looks at it.
    try {
      await sagasDb.query("BEGIN");
      await sagasDb.query(
        `INSERT INTO sagas (id, definition, subject_id, status, cursor, completed, context, correlation_id,
                            lease_owner, lease_until)
         VALUES ($1, 'order', $2, 'RUNNING', $3, 0, $4, $5, 'dead-engine/1', now() - interval '3 seconds')`,
        [sagaId, placed.id, initialState().cursor, definition.start.context({ order: placed }, sagaId), sagaId],
      );
      await sagasDb.query(
        "INSERT INTO saga_events (saga_id, step, attempt, outcome, message) VALUES ($1, 'start', 0, 'started', 'test')",
        [sagaId],
      );
      await sagasDb.query("COMMIT");
      await sagasDb.query("BEGIN");
      await sagasDb.query("SELECT id FROM sagas WHERE id = $1 FOR UPDATE", [sagaId]);
      expect(await stalledIds()).toContain(sagaId);
      const stalled = await json<Saga>(await send("GET", `/api/sagas/${sagaId}`));
      expect(stalled).toMatchObject({ status: "RUNNING", step: "stock", stalled: true, leaseOwner: "dead-engine/1" });
      const printed: string[] = [];
      await sagaCommand(node.broker, "list", undefined, { stalled: true }, (text) => printed.push(text));
      expect(printed.find((line) => line.startsWith(sagaId))).toContain(
        "STALLED: no engine holds it (last: dead-engine/1)",
      );
    } finally {
      await sagasDb.query("ROLLBACK");
    }

    const ended = await waitFor(
      async () => {
        const saga = await sagaOf(placed.id);
        return saga?.status === "COMPLETED" ? saga : undefined;
      },
      15_000,
      "the taken-over saga to complete",
    );
    expect(steps(ended).slice(0, 3)).toEqual(["start:started", "stock:swept", "stock:ok"]);
    expect(steps(ended).filter((step) => step.endsWith(":swept"))).toHaveLength(1);
    expect(steps(ended).at(-1)).toBe("finish:completed:ok");
    expect(ended.timeline![1].message).toMatch(/^the lease of dead-engine\/1 ran out \d+ s ago: taken over by /);
    expect(ended).toMatchObject({ stalled: false, leaseOwner: null });
    expect(sweptCount() - sweptBefore).toBe(1);
    expect(await stalledIds()).not.toContain(ended.id);
  });

  it("sends a lost order.created again once the order has stayed PENDING, and its saga runs", async () => {
    const placed = await placeOrder("LOST");
    const placedAt = Date.now();
    const ended = await waitFor(
      async () => {
        const saga = await sagaOf(placed.id);
        return saga?.status === "COMPLETED" ? saga : undefined;
      },
      STALL_AFTER_MS + 15_000,
      "the saga of the re-announced order to complete",
    );
    // Nothing started it before the orders service sent its event again.
    expect(Date.parse(ended.createdAt) - placedAt).toBeGreaterThanOrEqual(STALL_AFTER_MS - 500);
    expect(steps(ended)[0]).toBe("start:started");
    expect(steps(ended).at(-1)).toBe("finish:completed:ok");
    // Two outbox rows for the one event: the lost one and the one sent again, under its own message id.
    const { rows } = await ordersDb.query<{ id: string; event: string; sent: boolean }>(
      `SELECT id, envelope->>'id' AS event, sent_at IS NOT NULL AS sent FROM outbox
       WHERE channel = 'order.created' AND envelope->'payload'->'order'->>'id' = $1 ORDER BY seq`,
      [placed.id],
    );
    expect(rows).toHaveLength(2);
    expect(rows.every((row) => row.sent && row.event === rows[0].event)).toBe(true);
    expect(rows[0].id).not.toBe(rows[1].id);
    const order = await orderOf(placed.id);
    expect(order.status).toBe("COMPLETED");
  });

  it("does not take over a saga that waits out a retry's backoff, however long past its lease it waits", async () => {
    const sweptBefore = sweptCount();
    const placed = await placeOrder("FLAKY", { paymentMethod: "pm_card_flaky" });
    // Looked at every poll for the whole wait: never shown stalled, never swept, while the lease is renewed.
    const seenStalled: string[] = [];
    const ended = await waitFor(
      async () => {
        const saga = await sagaOf(placed.id);
        if (!saga) return undefined;
        if (saga.stalled || (await stalledIds()).includes(saga.id)) seenStalled.push(`${saga.step} at ${Date.now()}`);
        return saga.status === "COMPLETED" ? saga : undefined;
      },
      20_000,
      "the retried saga to complete",
    );
    expect(seenStalled).toEqual([]);
    const timeline = ended.timeline!;
    const transient = steps(ended).indexOf("payment:transient");
    expect(steps(ended)[transient + 1]).toBe("payment:ok");
    // The retry did wait its backoff, so the sweeper had its chances to get it wrong.
    const waited = Date.parse(timeline[transient + 1].at) - Date.parse(timeline[transient].at);
    expect(waited).toBeGreaterThanOrEqual(LEASE_MS * 3);
    expect(steps(ended).filter((step) => step.endsWith(":swept"))).toEqual([]);
    expect(sweptCount() - sweptBefore).toBe(0);
  });
});
