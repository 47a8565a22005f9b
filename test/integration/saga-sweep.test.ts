/**
 * The saga sweeper on one node with the real PostgreSQL, over in-memory channels and over JetStream: a
 * `saga.stepDue` the outbox marked sent but that never reached the bus (the drop point `outbox.drop:saga.stepDue`,
 * as a JetStream that acknowledged and then lost it) leaves its saga stalled, shown as such, and the sweeper sends
 * the command again so the saga still ends; a saga waiting for a delayed retry is not stalled and not swept.
 *
 * The drop point loses the first `saga.stepDue` of the node: the first order's, so the tests run in this order.
 */
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
import { sagaCommand } from "../../bin/repl-commands";
import { databaseUrlFor } from "../../lib/database";
import type { Order, OrderWithSaga } from "../../services/orders.service";
import type { Product } from "../../services/products.service";
import type { Saga, SagaPage } from "../../services/sagas.service";
import { apiRequest, orderBody, type OrderOptions } from "../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  login,
  startInProcessNode,
  testConfig,
  testNatsUrl,
  waitFor,
} from "../support/nodes";
import { freePort } from "../support/servers";

const STALL_AFTER_MS = 2000;

describe.each([
  ["in-memory channels", {}],
  ["JetStream", { TRANSPORTER: testNatsUrl() }],
])("over %s", (_wiring, transport: Record<string, string>) => {
  const scope = isolation();
  let broker: ServiceBroker;
  let base: string;
  let admin: string;
  let product: Product;
  let sagasDb: Client;

  const send = (method: string, path: string, body?: unknown) => apiRequest(base, admin, method, path, body);

  async function placeOrder(tag: string, options: OrderOptions = {}): Promise<Order> {
    const res = await send("POST", "/api/orders", orderBody(product.id, tag, options));
    expect(res.status).toBe(201);
    return json<Order>(res);
  }

  const sagaOf = async (orderId: string) =>
    (await json<OrderWithSaga>(await send("GET", `/api/orders/${orderId}`))).saga ?? undefined;

  const stalledIds = async () =>
    (await json<SagaPage>(await send("GET", "/api/sagas?stalled=true"))).rows.map((saga) => saga.id);

  const sweptCount = () =>
    (broker.metrics.getMetric("aicunet.sagas.swept")?.get({ definition: "order" })?.value as number | undefined) ?? 0;

  const steps = (saga: Saga) => saga.timeline!.map((entry) => `${entry.step}:${entry.outcome}`);

  beforeAll(async () => {
    const port = await freePort();
    const cfg = testConfig(scope, {
      ...transport,
      SERVICES: "api,auth,products,orders,audit,payments,shipping,sagas",
      PORT: String(port),
      FAILPOINTS: "outbox.drop:saga.stepDue",
      SAGA_STALL_AFTER: String(STALL_AFTER_MS),
      SAGA_SWEEP_INTERVAL: "200",
      // A retry waits 5 s, far past the stall threshold: only its due time tells it from a stall.
      SAGA_RETRY_DELAY: "5000",
      PAYMENTS_FLAKY_FAILURES: "2",
    });
    broker = await startInProcessNode(cfg);
    base = `http://127.0.0.1:${port}`;
    admin = await login(base);
    product = await json<Product>(
      await send("POST", "/api/products", {
        sku: "SWEEP-1",
        name: "Sweep",
        price: { amount: 700, currency: "EUR" },
        stock: 1000,
      }),
    );
    sagasDb = new Client({ connectionString: databaseUrlFor("sagas", cfg) });
    await sagasDb.connect();
  });

  afterAll(async () => {
    await sagasDb?.end();
    await broker?.stop();
    await dropScopeDatabases(scope.prefix);
  });

  it("sends a lost step command again once its saga stalls, shows the saga stalled meanwhile, and the saga ends", async () => {
    const sweptBefore = sweptCount();
    const placed = await placeOrder("LOST");
    const started = await waitFor(() => sagaOf(placed.id), 10_000, "the saga to start");
    expect(started).toMatchObject({ status: "RUNNING", attempt: 1, stalled: false });
    const firstStep = started.step;

    // A lease holder (as a step in flight would be) keeps the sweeper off the saga while the test looks at it.
    try {
      await sagasDb.query("BEGIN");
      await sagasDb.query("SELECT id FROM sagas WHERE id = $1 FOR UPDATE", [started.id]);
      await waitFor(
        async () => ((await stalledIds()).includes(started.id) ? true : undefined),
        STALL_AFTER_MS + 5000,
        "the saga to be listed as stalled",
      );
      const stalled = await json<Saga>(await send("GET", `/api/sagas/${started.id}`));
      expect(stalled).toMatchObject({ status: "RUNNING", step: firstStep, stalled: true });
      expect(steps(stalled)).toEqual(["start:started"]);
      const printed: string[] = [];
      await sagaCommand(broker, "list", undefined, { stalled: true }, (text) => printed.push(text));
      expect(printed.find((line) => line.startsWith(started.id))).toContain(`STALLED since ${stalled.dueAt}`);
    } finally {
      await sagasDb.query("ROLLBACK");
    }

    const ended = await waitFor(
      async () => {
        const saga = await sagaOf(placed.id);
        return saga?.status === "COMPLETED" ? saga : undefined;
      },
      15_000,
      "the swept saga to complete",
    );
    expect(steps(ended).slice(0, 3)).toEqual(["start:started", `${firstStep}:swept`, `${firstStep}:ok`]);
    expect(steps(ended).filter((step) => step.endsWith(":swept"))).toHaveLength(1);
    expect(steps(ended).at(-1)).toBe("finish:completed:ok");
    expect(ended.timeline![1].message).toMatch(/^not moved \d+ s after its command was due: sent again$/);
    expect(ended.stalled).toBe(false);
    expect(sweptCount() - sweptBefore).toBe(1);
    expect(await stalledIds()).not.toContain(ended.id);
  });

  it("does not sweep a saga that waits for a delayed retry, however long past the stall threshold it waits", async () => {
    const sweptBefore = sweptCount();
    const placed = await placeOrder("FLAKY", { paymentMethod: "pm_card_flaky" });
    // Looked at every poll for the whole wait: never shown stalled, never swept.
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
    expect(waited).toBeGreaterThanOrEqual(STALL_AFTER_MS + 2000);
    expect(steps(ended).filter((step) => step.endsWith(":swept"))).toEqual([]);
    expect(sweptCount() - sweptBefore).toBe(0);
  });
});
