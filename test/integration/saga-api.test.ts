/**
 * The saga API and REPL commands on the embedded default's wiring (one node, in-memory channels, the real
 * PostgreSQL): inspection, an operator compensating a running saga, the 409s of moves that do not apply, bad input,
 * and who may look.
 */
import type { Client } from "pg";
import { sagaCommand } from "../../bin/repl-commands";
import type { Order } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import type { Saga, SagaPage } from "../../contracts/sagas";
import { validateOpenApi } from "../support/openapi";
import { orderBody, registerCustomer } from "../../support/api";
import { type ErrorBody, json, waitFor } from "../../support/nodes";
import { CaptureLogger } from "../support/capture-logger";
import { withNode } from "../support/suite";

const logs = new CaptureLogger();
const node = withNode(
  {
    SERVICES: "api,auth,products,orders,audit,payments,shipping,sagas",
    SAGA_STEP_TIMEOUT: "10000",
    // Step retries at about 0.2, 0.6, 1.4 and 3 s after the first attempt: a 1.2 s outage fails the first three.
    SAGA_STEP_ATTEMPTS: "5",
    SAGA_RETRY_DELAY: "200",
    SAGA_COMPENSATION_ATTEMPTS: "2",
    PAYMENTS_SLOW_MS: "1500",
  },
  { broker: { logger: logs } },
);
const { send, placeOrder, orderOf, settled } = node;
let customer: string;
let product: Product;
let paymentsDb: Client;

beforeAll(async () => {
  customer = await registerCustomer(node.base, "cust@saga.example");
  product = await node.createProduct({
    sku: "SAPI-1",
    name: "Saga API",
    price: { amount: 900, currency: "EUR" },
    stock: 1000,
  });
  paymentsDb = await node.database("payments");
});

it("shows a customer's order with its saga, and operators every saga with its timeline", async () => {
  const order = await settled((await placeOrder(product.id, "MINE", {}, customer)).id, { token: customer });
  expect(order).toMatchObject({ status: "COMPLETED", saga: { status: "COMPLETED", subjectId: order.id } });

  const page = await json<SagaPage>(await send("GET", "/api/sagas?status=COMPLETED"));
  expect(page.rows.map((saga) => saga.subjectId)).toContain(order.id);
  const saga = await json<Saga>(await send("GET", `/api/sagas/${order.saga!.id}`));
  expect(saga.timeline!.map((entry) => entry.step)).toEqual([
    "start",
    "stock",
    "payment",
    "markPaid",
    "shipping",
    "commitStock",
    "markShipped",
    "finish:completed",
  ]);
  expect(saga.timeline!.every((entry) => entry.outcome === "started" || entry.outcome === "ok")).toBe(true);

  const printed: string[] = [];
  await sagaCommand(node.broker, "show", saga.id, {}, (text) => printed.push(text));
  expect(printed[0]).toBe(`${saga.id} order ${order.id}: COMPLETED`);
  expect(printed).toHaveLength(9);
  await sagaCommand(node.broker, "list", undefined, { status: "COMPLETED" }, (text) => printed.push(text));
  expect(printed.some((line) => line.startsWith(saga.id) && line.includes("at finish:completed"))).toBe(true);

  expect((await send("GET", "/api/sagas", undefined, customer)).status).toBe(403);
  expect((await send("POST", `/api/sagas/${saga.id}/retry`, undefined, customer)).status).toBe(403);
});

it("lets an operator compensate a running saga: its payment is refunded or voided and the order cancelled", async () => {
  const placed = await placeOrder(product.id, "STUCK", { paymentMethod: "pm_card_slow" });
  const running = await waitFor(
    async () => {
      const order = await orderOf(placed.id);
      // In its slow payment step: the stock step before it may still be running on a loaded machine.
      return order.saga?.status === "RUNNING" && order.saga.step === "payment" ? order.saga : undefined;
    },
    10_000,
    "the saga running its payment step",
  );
  const printed: string[] = [];
  await sagaCommand(node.broker, "compensate", running.id, {}, (text) => printed.push(text));
  expect(printed[0]).toMatch(new RegExp(`^Saga ${running.id} is COMPENSATING, at payment:compensate`));
  const order = await settled(placed.id);
  expect(order).toMatchObject({ status: "CANCELLED", statusReason: "compensated by an operator" });
  expect(order.saga!.timeline!.map((entry) => `${entry.step}:${entry.outcome}`)).toContain(
    "payment:compensate:abandoned",
  );
  // The charge was either taken and refunded, or voided before the provider's slow answer could take it. A sleep,
  // not a wait: the slow answer (PAYMENTS_SLOW_MS) must have come and left no charge standing.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const { rows } = await paymentsDb.query<{ status: string }>("SELECT status FROM payments WHERE charge_key = $1", [
    `${running.id}:payment`,
  ]);
  expect(rows).toHaveLength(1);
  expect(["REFUNDED", "VOIDED"]).toContain(rows[0].status);
});

/** A saga counter's value now (`aicunet.sagas.completed` and the like) for the order saga. */
const sagaCount = (name: string) =>
  (node.broker.metrics.getMetric(`aicunet.sagas.${name}`)?.get({ definition: "order" })?.value as number | undefined) ??
  0;

it("rides out a carrier outage with step retries, and counts the saga and its step durations", async () => {
  const before = { started: sagaCount("started"), completed: sagaCount("completed") };
  expect((await send("POST", "/api/shipping/outage", { durationMs: 1200 })).status).toBe(200);
  const order = await settled((await placeOrder(product.id, "OUTAGE")).id);
  expect(order.status).toBe("COMPLETED");
  const steps = order.saga!.timeline!.map((entry) => `${entry.step}:${entry.outcome}`);
  expect(steps).toContain("shipping:transient");
  expect(steps.filter((step) => step === "shipping:ok")).toHaveLength(1);
  expect(sagaCount("started") - before.started).toBe(1);
  expect(sagaCount("completed") - before.completed).toBe(1);
  const transient = node.broker.metrics
    .getMetric("aicunet.sagas.step.duration")
    ?.get({ definition: "order", step: "shipping", outcome: "transient" }) as { count: number } | undefined;
  expect(transient?.count).toBeGreaterThanOrEqual(1);
});

it("handles a saga's steps under the request id of the order's request, so its retry warnings name it", async () => {
  // Long enough that the saga surely reaches its shipping step inside it (the executor gets there in a few
  // milliseconds, or a second on a loaded machine), short enough for the step's retries (5, from 200 ms, doubling).
  expect((await send("POST", "/api/shipping/outage", { durationMs: 1500 })).status).toBe(200);
  const linesBefore = logs.records.length;
  const res = await send("POST", "/api/orders", orderBody(product.id, "REQUEST-ID"));
  expect(res.status).toBe(201);
  const requestId = res.headers.get("x-request-id")!;
  const order = await settled((await json<Order>(res)).id);
  expect(order.status).toBe("COMPLETED");
  const retries = logs.records
    .slice(linesBefore)
    .filter((record) => record.message.startsWith("Retry to call 'shipping.create'"));
  expect(retries.length).toBeGreaterThan(0);
  expect(retries.map((record) => record.requestId)).toEqual(retries.map(() => requestId));
});

it("parks a saga whose refund keeps failing, and resumes it with the REPL's saga retry", async () => {
  const failedBefore = sagaCount("failed");
  expect((await send("POST", "/api/payments/refund-outage", { durationMs: 600_000 })).status).toBe(200);
  const placed = await placeOrder(product.id, "REPL-RETRY", { country: "ZZ" });
  const parked = await waitFor(
    async () => {
      const order = await orderOf(placed.id);
      return order.saga?.status === "FAILED" ? order.saga : undefined;
    },
    20_000,
    "the saga to park",
  );
  expect(sagaCount("failed") - failedBefore).toBe(1);
  expect((await send("POST", "/api/payments/refund-outage", { durationMs: 0 })).status).toBe(200);
  const printed: string[] = [];
  await sagaCommand(node.broker, "retry", parked.id, {}, (text) => printed.push(text));
  expect(printed).toEqual([`Saga ${parked.id} is COMPENSATING, at payment:compensate`]);
  const order = await settled(placed.id);
  expect(order).toMatchObject({ status: "COMPENSATED", saga: { status: "COMPENSATED" } });
  const { rows } = await paymentsDb.query("SELECT status FROM payments WHERE charge_key = $1", [
    `${parked.id}:payment`,
  ]);
  expect(rows).toEqual([{ status: "REFUNDED" }]);
});

it("documents every route of the full system in a valid OpenAPI 3.1 document", async () => {
  const doc = await json<{ paths: Record<string, unknown> }>(await send("GET", "/api/openapi.json"));
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining([
      "/api/sagas",
      "/api/sagas/{id}/retry",
      "/api/payments",
      "/api/shipping/outage",
      "/api/audit/verify",
    ]),
  );
  expect(await validateOpenApi(doc)).toEqual({ valid: true });
});

it("answers 409 to moves that do not apply, and 4xx to bad input", async () => {
  const order = await settled((await placeOrder(product.id, "DONE")).id);
  const retried = await send("POST", `/api/sagas/${order.saga!.id}/retry`);
  expect(retried.status).toBe(409);
  expect(await json<ErrorBody>(retried)).toMatchObject({ type: "CONFLICT", data: { status: "COMPLETED" } });
  expect((await send("POST", `/api/sagas/${order.saga!.id}/compensate`)).status).toBe(409);
  expect((await send("GET", "/api/sagas?status=STUCK")).status).toBe(422);
  expect((await send("GET", "/api/sagas?pageSize=1000")).status).toBe(422);
  expect((await send("GET", "/api/sagas/1%20OR%201=1")).status).toBe(422);
  expect((await send("GET", "/api/sagas/6f1c2a4e-0000-4000-8000-000000000000")).status).toBe(404);
  expect((await send("POST", "/api/sagas/6f1c2a4e-0000-4000-8000-000000000000/retry")).status).toBe(404);
});
