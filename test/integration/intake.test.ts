/**
 * Backpressure at intake, on the embedded default's wiring (one node, in-memory channels, the real PostgreSQL): with
 * ORDERS_MAX_BACKLOG at 3 and a slow payment provider, a burst of orders is partly accepted (201) and partly refused
 * (503 OVERLOADED with `Retry-After`) before anything is written; every accepted order ends, and once the backlog has
 * drained new orders are accepted again.
 */
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
import { databaseUrlFor } from "../../lib/database";
import type { Order, OrderWithSaga } from "../../services/orders.service";
import type { Product } from "../../services/products.service";
import { apiRequest, orderBody } from "../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  login,
  startInProcessNode,
  testConfig,
  waitFor,
  type ErrorBody,
} from "../support/nodes";
import { freePort } from "../support/servers";

const scope = isolation();
let broker: ServiceBroker;
let base: string;
let admin: string;
let product: Product;
let ordersDb: Client;

const send = (method: string, path: string, body?: unknown) => apiRequest(base, admin, method, path, body);

beforeAll(async () => {
  const port = await freePort();
  const cfg = testConfig(scope, {
    SERVICES: "api,auth,products,orders,audit,payments,shipping,sagas",
    PORT: String(port),
    ORDERS_MAX_BACKLOG: "3",
    // Each accepted order's saga waits this long at its payment step, so the burst meets a full backlog.
    PAYMENTS_SLOW_MS: "1500",
    SAGA_STEP_TIMEOUT: "10000",
  });
  broker = await startInProcessNode(cfg);
  base = `http://127.0.0.1:${port}`;
  admin = await login(base);
  product = await json<Product>(
    await send("POST", "/api/products", {
      sku: "INTAKE-1",
      name: "Intake widget",
      price: { amount: 700, currency: "EUR" },
      stock: 1000,
    }),
  );
  ordersDb = new Client({ connectionString: databaseUrlFor("orders", cfg) });
  await ordersDb.connect();
});

afterAll(async () => {
  await ordersDb?.end();
  await broker?.stop();
  await dropScopeDatabases(scope.prefix);
});

async function completed(id: string): Promise<OrderWithSaga> {
  return waitFor(
    async () => {
      const order = await json<OrderWithSaga>(await send("GET", `/api/orders/${id}`));
      return order.status === "COMPLETED" ? order : undefined;
    },
    30_000,
    `order ${id} to complete`,
  );
}

it("refuses a burst beyond the backlog bound with 503 and Retry-After, writing nothing, and completes the rest", async () => {
  const answers = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      send("POST", "/api/orders", orderBody(product.id, `BURST-${i}`, { paymentMethod: "pm_card_slow" })),
    ),
  );
  const accepted = answers.filter((res) => res.status === 201);
  const refused = answers.filter((res) => res.status === 503);
  expect(accepted.length + refused.length).toBe(answers.length);
  expect(accepted.length).toBe(3);
  expect(refused.length).toBe(5);
  for (const res of refused) {
    expect(res.headers.get("retry-after")).toBe("1");
    const body = await json<ErrorBody>(res);
    expect(body).toMatchObject({ type: "OVERLOADED", data: { limit: 3, retryAfter: 1 } });
  }

  const orders = await Promise.all(accepted.map((res) => json<Order>(res)));
  // Nothing of a refused order was written: the database holds exactly the accepted ones.
  const stored = await ordersDb.query<{ id: string }>("SELECT id FROM orders");
  expect(stored.rows.map((row) => row.id).sort()).toEqual(orders.map((order) => order.id).sort());

  const ended = await Promise.all(orders.map((order) => completed(order.id)));
  expect(ended.map((order) => order.saga?.status)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED"]);

  // The backlog has drained: a new order is accepted (and ends) again.
  const again = await waitFor(
    async () => {
      const res = await send("POST", "/api/orders", orderBody(product.id, "AFTER"));
      return res.status === 201 ? json<Order>(res) : undefined;
    },
    10_000,
    "a new order to be accepted",
  );
  expect((await completed(again.id)).status).toBe("COMPLETED");
});
