/**
 * The order saga's stock reservation on one node with the real PostgreSQL: an order takes its stock at once, a
 * completed order keeps it taken (COMMITTED), a declined card or an unsupported destination puts it back, a burst
 * of orders for the last units of a popular product completes exactly as many as there are, and a repeated
 * reserve or release under the same key changes nothing twice.
 */
import type { Client } from "pg";
import { SYSTEM_CALLER } from "../../lib/permissions";
import type { Order, OrderWithSaga } from "../../contracts/orders";
import type { Product, StockReservation } from "../../contracts/products";
import { orderBody } from "../../support/api";
import { json, waitFor } from "../../support/nodes";
import { withNode } from "../support/suite";

const node = withNode({
  SERVICES: "api,auth,products,orders,audit,payments,shipping,sagas",
  SAGA_STEP_TIMEOUT: "10000",
  SAGA_RETRY_DELAY: "200",
  PAYMENTS_SLOW_MS: "1500",
  // Eight services' pools in one process under a burst of orders: at the default 10 each they could take most of
  // a shared server's 100 connections, and "too many clients" is a dependency outage that opens breakers.
  DATABASE_POOL_MAX: "4",
});
const { send, placeOrder, settled } = node;
let productsDb: Client;

const newProduct = (sku: string, stock: number) =>
  node.createProduct({ sku, name: sku, price: { amount: 500, currency: "EUR" }, stock });

const stockOf = async (product: Product) =>
  (await json<Product>(await send("GET", `/api/products/${product.id}`))).stock;

async function reservationOf(sagaId: string) {
  const { rows } = await productsDb.query<{ status: string; lines: unknown }>(
    "SELECT status, lines FROM stock_reservations WHERE reservation_key = $1",
    [`${sagaId}:stock`],
  );
  return rows[0];
}

/** The stock levels `product.stockChanged` announced for a product, in the order its outbox holds them. */
async function announcedStock(product: Product) {
  const { rows } = await productsDb.query<{ stock: number }>(
    `SELECT (envelope->'payload'->'product'->>'stock')::int AS stock FROM outbox
     WHERE channel = 'product.stockChanged' AND envelope->'payload'->'product'->>'id' = $1 ORDER BY seq`,
    [product.id],
  );
  return rows.map((row) => row.stock);
}

const steps = (order: OrderWithSaga) => order.saga!.timeline!.map((entry) => `${entry.step}:${entry.outcome}`);

/** A saga participant's call, as the saga engine makes it. */
const asSaga = (idempotencyKey: string) => ({ meta: { caller: SYSTEM_CALLER, idempotencyKey } });

beforeAll(async () => {
  productsDb = await node.database("products");
});

it("takes an order's stock at once and keeps it taken once the order completes", async () => {
  const product = await newProduct("STOCK-OK", 10);
  // The slow card holds the saga at its payment, after the reservation.
  const placed = await placeOrder(product.id, "RESERVE", { quantity: 3, paymentMethod: "pm_card_slow" });
  await waitFor(async () => ((await stockOf(product)) === 7 ? true : undefined), 10_000, "the stock reserved");

  const order = await settled(placed.id);
  expect(order.status).toBe("COMPLETED");
  expect(steps(order)).toEqual([
    "start:started",
    "stock:ok",
    "payment:ok",
    "markPaid:ok",
    "shipping:ok",
    "commitStock:ok",
    "markShipped:ok",
    "finish:completed:ok",
  ]);
  expect(await reservationOf(order.saga!.id)).toEqual({
    status: "COMMITTED",
    lines: [{ productId: product.id, quantity: 3 }],
  });
  expect(await stockOf(product)).toBe(7);
  expect(await announcedStock(product)).toEqual([7]);
});

it("puts the stock back when the card is declined: the order is CANCELLED", async () => {
  const product = await newProduct("STOCK-DECLINED", 10);
  const order = await settled(
    (await placeOrder(product.id, "DECLINED", { quantity: 4, paymentMethod: "pm_card_declined" })).id,
  );
  expect(order).toMatchObject({ status: "CANCELLED", saga: { status: "COMPENSATED" } });
  expect(steps(order)).toEqual([
    "start:started",
    "stock:ok",
    "payment:rejected",
    "stock:compensate:ok",
    "finish:compensated:ok",
  ]);
  expect((await reservationOf(order.saga!.id)).status).toBe("RELEASED");
  expect(await stockOf(product)).toBe(10);
  expect(await announcedStock(product)).toEqual([6, 10]);
});

it("puts the stock back when the carrier does not ship there: the order is COMPENSATED", async () => {
  const product = await newProduct("STOCK-ZZ", 10);
  const order = await settled((await placeOrder(product.id, "NOWHERE", { quantity: 2, country: "ZZ" })).id);
  expect(order).toMatchObject({ status: "COMPENSATED", saga: { status: "COMPENSATED" } });
  expect(steps(order)).toEqual([
    "start:started",
    "stock:ok",
    "payment:ok",
    "markPaid:ok",
    "shipping:rejected",
    "payment:compensate:ok",
    "stock:compensate:ok",
    "finish:compensated:ok",
  ]);
  expect((await reservationOf(order.saga!.id)).status).toBe("RELEASED");
  expect(await stockOf(product)).toBe(10);
});

it("completes exactly as many orders as there are units of a popular product, and cancels the rest", async () => {
  const product = await newProduct("STOCK-HOT", 5);
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, index) => send("POST", "/api/orders", orderBody(product.id, `HOT-${index}`))),
  );
  // An order placed once the stock is gone is refused up front (422); the others race in their sagas.
  const created = await Promise.all(answers.filter((res) => res.status === 201).map((res) => json<Order>(res)));
  expect(answers.filter((res) => res.status !== 201).map((res) => res.status)).toEqual(
    Array.from({ length: 20 - created.length }, () => 422),
  );
  const orders = await Promise.all(created.map((order) => settled(order.id)));
  const completed = orders.filter((order) => order.status === "COMPLETED");
  const others = orders.filter((order) => order.status !== "COMPLETED");
  expect(completed).toHaveLength(5);
  // The rest end undone: refused for stock, or (on a loaded machine, a step timing out after its reservation)
  // compensated with the reservation given back; none keeps a unit.
  for (const order of others) {
    expect(order.saga?.status).toBe("COMPENSATED");
    expect(["CANCELLED", "COMPENSATED"]).toContain(order.status);
    if (steps(order).includes("stock:ok")) {
      expect((await reservationOf(order.saga!.id)).status).toBe("RELEASED");
    } else {
      expect(order.statusReason).toMatch(/^Not enough stock/);
    }
  }
  expect(others.filter((order) => /^Not enough stock/.test(order.statusReason ?? "")).length).toBeGreaterThan(0);
  expect(await stockOf(product)).toBe(0);
});

it("lets one of many concurrent reservations of the last units through per unit, all lines or none", async () => {
  const hot = await newProduct("STOCK-ROW", 5);
  const plenty = await newProduct("STOCK-PLENTY", 100);
  const orderId = "00000000-0000-4000-8000-000000000001";
  const outcomes = await Promise.allSettled(
    Array.from({ length: 20 }, (_, index) =>
      node.broker.call<StockReservation, object>(
        "products.reserve",
        {
          orderId,
          lines: [
            { productId: plenty.id, quantity: 1 },
            { productId: hot.id, quantity: 1 },
          ],
        },
        asSaga(`hot-${index}:stock`),
      ),
    ),
  );
  const refused = outcomes.filter((outcome) => outcome.status === "rejected");
  expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(5);
  expect(refused).toHaveLength(15);
  for (const outcome of refused) {
    expect((outcome as PromiseRejectedResult).reason).toMatchObject({
      code: 422,
      type: "INSUFFICIENT_STOCK",
      data: { productId: hot.id, wanted: 1, available: 0 },
    });
  }
  expect(await stockOf(hot)).toBe(0);
  // The refused reservations took nothing of their other line either.
  expect(await stockOf(plenty)).toBe(95);
});

it("changes nothing twice for a repeated reserve, release or commit under the same key", async () => {
  const product = await newProduct("STOCK-REPEAT", 10);
  const orderId = "00000000-0000-4000-8000-000000000002";
  const reserve = () =>
    node.broker.call<StockReservation, object>(
      "products.reserve",
      { orderId, lines: [{ productId: product.id, quantity: 4 }] },
      asSaga("repeat:stock"),
    );
  const release = () =>
    node.broker.call<StockReservation, object>("products.release", { reservationKey: "repeat:stock" }, asSaga("x"));

  const first = await reserve();
  expect(first).toMatchObject({
    key: "repeat:stock",
    status: "RESERVED",
    lines: [{ productId: product.id, quantity: 4 }],
  });
  expect(await reserve()).toEqual(first);
  expect(await stockOf(product)).toBe(6);

  const [released, again] = await Promise.all([release(), release()]);
  expect(released.status).toBe("RELEASED");
  expect(again.status).toBe("RELEASED");
  expect(await release()).toMatchObject({ status: "RELEASED" });
  expect(await stockOf(product)).toBe(10);
  // A reserve repeated after its release answers the reservation as it is now, and takes nothing.
  expect(await reserve()).toMatchObject({ status: "RELEASED" });
  expect(await stockOf(product)).toBe(10);
  await expect(
    node.broker.call("products.commitReservation", { reservationKey: "repeat:stock" }, asSaga("y")),
  ).rejects.toMatchObject({ code: 409 });

  // A release before any reserve (a reserve step that timed out) voids the key: the late reserve takes nothing.
  expect(
    await node.broker.call<StockReservation, object>("products.release", { reservationKey: "late:stock" }, asSaga("z")),
  ).toMatchObject({ status: "VOIDED" });
  await expect(
    node.broker.call(
      "products.reserve",
      { orderId, lines: [{ productId: product.id, quantity: 1 }] },
      asSaga("late:stock"),
    ),
  ).rejects.toMatchObject({ code: 409 });
  expect(await stockOf(product)).toBe(10);

  // A refusal is kept: the same key answers it again even once there is stock enough.
  const refuse = () =>
    node.broker.call(
      "products.reserve",
      { orderId, lines: [{ productId: product.id, quantity: 11 }] },
      asSaga("refused:stock"),
    );
  await expect(refuse()).rejects.toMatchObject({ code: 422, type: "INSUFFICIENT_STOCK" });
  expect(
    (
      await send("PATCH", `/api/products/${product.id}`, {
        stock: 50,
        version: (await json<Product>(await send("GET", `/api/products/${product.id}`))).version,
      })
    ).status,
  ).toBe(200);
  await expect(refuse()).rejects.toMatchObject({ code: 422, type: "INSUFFICIENT_STOCK" });
  expect(await stockOf(product)).toBe(50);

  // Committing is idempotent and keeps the stock taken.
  await node.broker.call(
    "products.reserve",
    { orderId, lines: [{ productId: product.id, quantity: 5 }] },
    asSaga("c:stock"),
  );
  const commit = () =>
    node.broker.call<StockReservation, object>(
      "products.commitReservation",
      { reservationKey: "c:stock" },
      asSaga("c"),
    );
  expect(await commit()).toMatchObject({ status: "COMMITTED" });
  expect(await commit()).toMatchObject({ status: "COMMITTED" });
  expect(await stockOf(product)).toBe(45);
});

it("lets only the system reserve, release or commit stock", async () => {
  const user = { type: "user", id: "00000000-0000-4000-8000-000000000003", roles: ["admin"], permissions: ["*"] };
  const lines = [{ productId: "00000000-0000-4000-8000-000000000004", quantity: 1 }];
  for (const [action, params] of [
    ["products.reserve", { orderId: "00000000-0000-4000-8000-000000000005", lines }],
    ["products.release", { reservationKey: "user:stock" }],
    ["products.commitReservation", { reservationKey: "user:stock" }],
  ] as const) {
    await expect(
      node.broker.call(action, params, { meta: { caller: user, idempotencyKey: "user:stock" } }),
    ).rejects.toMatchObject({ code: 403 });
  }
});

it("announces a stock change only when an edit changes the stock, whatever other fields it sends", async () => {
  const product = await newProduct("STOCK-EDIT", 10);
  const announcedAtCreation = await announcedStock(product);
  // An edit form that sends every field, stock unchanged: a price change is not a stock change.
  const priceOnly = await send("PATCH", `/api/products/${product.id}`, {
    price: { amount: 650, currency: "EUR" },
    stock: 10,
    version: product.version,
  });
  expect(priceOnly.status).toBe(200);
  const repriced = await json<Product>(priceOnly);
  expect(repriced.price.amount).toBe(650);
  expect(await announcedStock(product)).toEqual(announcedAtCreation);

  const restocked = await send("PATCH", `/api/products/${product.id}`, { stock: 4, version: repriced.version });
  expect(restocked.status).toBe(200);
  expect(await announcedStock(product)).toEqual([...announcedAtCreation, 4]);
});
