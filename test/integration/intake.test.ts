/**
 * Backpressure at intake, on the embedded default's wiring (one node, in-memory channels, the real PostgreSQL): with
 * ORDERS_MAX_BACKLOG at 3 and a slow payment provider, a burst of orders is partly accepted (201) and partly refused
 * (503 OVERLOADED with `Retry-After`) before anything is written; every accepted order ends, and once the backlog has
 * drained new orders are accepted again.
 */
import type { Client } from "pg";
import type { Order } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { orderBody } from "../../support/api";
import { type ErrorBody, json, waitFor } from "../../support/nodes";
import { withNode } from "../support/suite";

const node = withNode({
  SERVICES: "api,auth,products,orders,audit,payments,shipping,sagas",
  ORDERS_MAX_BACKLOG: "3",
  // Each accepted order's saga waits this long at its payment step, so the burst meets a full backlog.
  PAYMENTS_SLOW_MS: "1500",
  SAGA_STEP_TIMEOUT: "10000",
});
const { send, settled } = node;
let product: Product;
let ordersDb: Client;

beforeAll(async () => {
  product = await node.createProduct({
    sku: "INTAKE-1",
    name: "Intake widget",
    price: { amount: 700, currency: "EUR" },
    stock: 1000,
  });
  ordersDb = await node.database("orders");
});

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

  const ended = await Promise.all(orders.map((order) => settled(order.id)));
  expect(ended.map((order) => [order.status, order.saga?.status])).toEqual(
    Array.from({ length: 3 }, () => ["COMPLETED", "COMPLETED"]),
  );

  // The backlog has drained: a new order is accepted (and ends) again.
  const again = await waitFor(
    async () => {
      const res = await send("POST", "/api/orders", orderBody(product.id, "AFTER"));
      return res.status === 201 ? json<Order>(res) : undefined;
    },
    10_000,
    "a new order to be accepted",
  );
  expect((await settled(again.id)).status).toBe("COMPLETED");
});
