/**
 * The path end to end on the real PostgreSQL: the gateway's REST routes, validation, the products service, its own
 * database created on start and its migrations applied exactly once.
 */
import type { Client } from "pg";
import productMigrations from "../../migrations/products";
import { type ErrorBody, json, testConfig } from "../../support/nodes";
import { freePort } from "../../support/servers";
import { startInProcessNode } from "../support/nodes";
import { withNode } from "../support/suite";
import type { Product, ProductPage } from "../../contracts/products";
import type { ClusterHealth, NodeReadiness } from "../../contracts/health";

const node = withNode({ SERVICES: "api,auth,products" });
const { send } = node;
let productsDb: Client;

const widget = (sku: string, extra: Record<string, unknown> = {}) => ({
  sku,
  name: `Widget ${sku}`,
  description: "A small widget",
  price: { amount: 1299, currency: "EUR" },
  stock: 7,
  ...extra,
});

async function productCount(): Promise<number> {
  const { rows } = await productsDb.query<{ count: string }>("SELECT count(*) FROM products");
  return Number(rows[0].count);
}

beforeAll(async () => {
  productsDb = await node.database("products");
});

describe("products through the gateway", () => {
  it("created the service's own database and recorded its migrations", async () => {
    const { rows } = await productsDb.query("SELECT name FROM schema_migrations");
    expect(rows).toEqual(productMigrations.map(({ name }) => ({ name })));
    expect(rows[0]).toEqual({ name: "0001-create-products" });
    expect(productsDb.database).toBe(`${node.scope.prefix}products`);
  });

  it("creates a product: 201, Location, the stored entity", async () => {
    const res = await send("POST", "/api/products", widget("W-1"));
    expect(res.status).toBe(201);
    const product = await json<Product>(res);
    expect(res.headers.get("location")).toBe(`/api/products/${product.id}`);
    expect(product).toMatchObject({
      sku: "W-1",
      name: "Widget W-1",
      price: { amount: 1299, currency: "EUR" },
      stock: 7,
      active: true,
    });
    const { rows } = await productsDb.query("SELECT sku, price_amount, currency FROM products WHERE id = $1", [
      product.id,
    ]);
    expect(rows).toEqual([{ sku: "W-1", price_amount: "1299", currency: "EUR" }]);

    const fetched = await fetch(`${node.base}/api/products/${product.id}`);
    expect(fetched.status).toBe(200);
    expect(await json<Product>(fetched)).toEqual(product);
  });

  it("answers 409 DUPLICATE for a taken sku and stores nothing", async () => {
    await send("POST", "/api/products", widget("W-DUP"));
    const before = await productCount();
    const res = await send("POST", "/api/products", widget("W-DUP", { name: "Other" }));
    expect(res.status).toBe(409);
    expect(await json<ErrorBody>(res)).toEqual({
      name: "ConflictError",
      message: "A product with sku W-DUP exists",
      code: 409,
      type: "DUPLICATE",
      data: { field: "sku", value: "W-DUP" },
    });
    expect(await productCount()).toBe(before);
  });

  it("answers 404 NOT_FOUND for an unknown id and 422 for an id that is not a UUID", async () => {
    const missing = await fetch(`${node.base}/api/products/8a1c4bb4-6f0e-4c8e-9b55-0c2b8f1f5b11`);
    expect(missing.status).toBe(404);
    expect(await json<ErrorBody>(missing)).toMatchObject({ code: 404, type: "NOT_FOUND", data: { entity: "Product" } });
    const malformed = await fetch(`${node.base}/api/products/not-a-uuid`);
    expect(malformed.status).toBe(422);
    expect(await json<ErrorBody>(malformed)).toMatchObject({
      type: "VALIDATION_ERROR",
      data: [{ field: "id", type: "uuid" }],
    });
  });

  const badBodies: [string, unknown, string[]][] = [
    ["missing fields", {}, ["sku", "name", "price"]],
    ["wrong types", widget("W-T", { stock: "many", active: "yes" }), ["stock", "active"]],
    ["a negative price", widget("W-N", { price: { amount: -5, currency: "EUR" } }), ["price.amount"]],
    ["a lowercase currency", widget("W-C", { price: { amount: 5, currency: "eur" } }), ["price.currency"]],
    ["SQL in the sku", widget("x'; DROP TABLE products; --"), ["sku"]],
    ["an unknown field", widget("W-U", { discount: 50 }), ["discount"]],
  ];
  it.each(badBodies)(
    "answers 422 with the offending fields for %s, and stores nothing",
    async (_case, body, fields) => {
      const before = await productCount();
      const res = await send("POST", "/api/products", body);
      expect(res.status).toBe(422);
      const error = await json<ErrorBody>(res);
      expect(error).toMatchObject({ name: "ValidationError", code: 422, type: "VALIDATION_ERROR" });
      const offending = (error.data as { field?: string }[]).map((problem) => problem.field ?? "");
      expect(offending.sort()).toEqual([...fields].sort());
      expect(await productCount()).toBe(before);
    },
  );

  it("answers 400 for a body that is not JSON", async () => {
    const res = await fetch(`${node.base}/api/products`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${node.token}` },
      body: "{not json",
    });
    expect(res.status).toBe(400);
    expect(await json<ErrorBody>(res)).toMatchObject({ code: 400 });
  });

  it("lists with paging, sorting and a text search that treats wildcards literally", async () => {
    for (const sku of ["L-A", "L-B", "L-C"]) {
      expect((await send("POST", "/api/products", widget(sku, { name: `Lamp ${sku}` }))).status).toBe(201);
    }
    expect((await send("POST", "/api/products", widget("L-D", { name: "Lamp 100% off" }))).status).toBe(201);

    const page = await json<ProductPage>(
      await fetch(`${node.base}/api/products?search=lamp&sort=-name&pageSize=2&page=1`),
    );
    expect(page).toMatchObject({ total: 4, page: 1, pageSize: 2, totalPages: 2 });
    // Names sort in byte order (C collation): "Lamp L-C" > "Lamp L-B" > "Lamp L-A" > "Lamp 100% off".
    expect(page.rows.map((row) => row.sku)).toEqual(["L-C", "L-B"]);

    const literal = await json<ProductPage>(
      await fetch(`${node.base}/api/products?search=${encodeURIComponent("100%")}`),
    );
    expect(literal.rows.map((row) => row.sku)).toEqual(["L-D"]);
    const underscore = await json<ProductPage>(await fetch(`${node.base}/api/products?search=L_A`));
    expect(underscore.total).toBe(0);
  });

  it("treats SQL metacharacters in a search as text: no match, no error, nothing changed", async () => {
    const before = await productCount();
    const res = await fetch(`${node.base}/api/products?search=${encodeURIComponent("x'; DROP TABLE products; --")}`);
    expect(res.status).toBe(200);
    expect((await json<ProductPage>(res)).total).toBe(0);
    expect(await productCount()).toBe(before);
  });

  it.each([
    ["pageSize=1000", "pageSize"],
    ["sort=name;DROP TABLE products", "sort"],
    ["page=0", "page"],
  ])("rejects ?%s with 422 naming %s", async (query, field) => {
    const res = await fetch(`${node.base}/api/products?${query}`);
    expect(res.status).toBe(422);
    const error = await json<ErrorBody>(res);
    expect((error.data as { field: string }[]).map((problem) => problem.field)).toEqual([field]);
  });

  it("makes every request's id itself, whatever X-Request-Id the caller sends, and answers it", async () => {
    // Two callers who send the same id (one copying another's) still get requests of their own.
    const chosen = { headers: { "X-Request-Id": "req-123" } };
    const [first, second] = await Promise.all([
      fetch(`${node.base}/api/products`, chosen),
      fetch(`${node.base}/api/products`, chosen),
    ]);
    const ids = [first, second].map((res) => res.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(ids[0]).not.toBe(ids[1]);
    const generated = await fetch(`${node.base}/api/products`);
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers unknown routes with the same error shape", async () => {
    const res = await fetch(`${node.base}/api/nothing-here`);
    expect(res.status).toBe(404);
    expect(await json<ErrorBody>(res)).toMatchObject({ name: "NotFoundError", code: 404, type: "NOT_FOUND" });
    expect((await fetch(`${node.base}/api/api/list-aliases`)).status).toBe(404);
  });

  it("serves liveness, readiness and the cluster view", async () => {
    expect(await json<{ status: string }>(await fetch(`${node.base}/health/live`))).toMatchObject({ status: "ok" });
    const ready = await fetch(`${node.base}/health/ready`);
    expect(ready.status).toBe(200);
    const checks = (await json<NodeReadiness>(ready)).checks.map((check) => check.name);
    expect(checks).toEqual(["broker", "gateway:routes", "database:auth", "auth:signing-key", "database:products"]);
    const cluster = await json<ClusterHealth>(await fetch(`${node.base}/api/health`));
    expect(cluster).toMatchObject({ status: "ok", nodes: [{ nodeID: node.broker.nodeID, ready: true }] });
  });
});

describe("updates with optimistic concurrency", () => {
  it("changes a product when the version matches, bumps it, and sends it as the ETag", async () => {
    const product = await json<Product>(await send("POST", "/api/products", widget("U-1")));
    const patched = await send("PATCH", `/api/products/${product.id}`, { stock: 3 }, undefined, {
      "If-Match": `"${product.version}"`,
    });
    expect(patched.status).toBe(200);
    const after = await json<Product>(patched);
    expect(after).toMatchObject({ stock: 3, version: product.version + 1, name: product.name });
    expect(patched.headers.get("etag")).toBe(`"${after.version}"`);

    const replaced = await send("PUT", `/api/products/${product.id}`, {
      ...widget("U-1", { name: "Renamed", price: { amount: 999, currency: "USD" } }),
      version: after.version,
    });
    expect(replaced.status).toBe(200);
    expect(await json<Product>(replaced)).toMatchObject({ name: "Renamed", price: { amount: 999, currency: "USD" } });
  });

  it("answers 409 STALE_VERSION for an old version and 428 without one, changing nothing", async () => {
    const product = await json<Product>(await send("POST", "/api/products", widget("U-2")));
    await send("PATCH", `/api/products/${product.id}`, { stock: 1, version: product.version });
    const stale = await send("PATCH", `/api/products/${product.id}`, { stock: 99, version: product.version });
    expect(stale.status).toBe(409);
    expect(await json<ErrorBody>(stale)).toMatchObject({
      type: "STALE_VERSION",
      data: { currentVersion: product.version + 1 },
    });
    const unversioned = await send("PATCH", `/api/products/${product.id}`, { stock: 98 });
    expect(unversioned.status).toBe(428);
    expect((await json<ErrorBody>(unversioned)).type).toBe("PRECONDITION_REQUIRED");
    const { rows } = await productsDb.query("SELECT stock FROM products WHERE id = $1", [product.id]);
    expect(rows).toEqual([{ stock: 1 }]);
  });

  it("lets exactly one of two concurrent writers with the same version win", async () => {
    const product = await json<Product>(await send("POST", "/api/products", widget("U-3")));
    const results = await Promise.all(
      [11, 22].map((stock) => send("PATCH", `/api/products/${product.id}`, { stock, version: product.version })),
    );
    expect(results.map((res) => res.status).sort()).toEqual([200, 409]);
    const winner = await json<Product>(results.find((res) => res.status === 200)!);
    const { rows } = await productsDb.query("SELECT stock, version FROM products WHERE id = $1", [product.id]);
    expect(rows).toEqual([{ stock: winner.stock, version: product.version + 1 }]);
  });

  it("deletes (conditionally when a version is given), then answers 404", async () => {
    const product = await json<Product>(await send("POST", "/api/products", widget("U-4")));
    const stale = await send("DELETE", `/api/products/${product.id}`, undefined, undefined, {
      "If-Match": `"${product.version + 5}"`,
    });
    expect(stale.status).toBe(409);
    const deleted = await send("DELETE", `/api/products/${product.id}`);
    expect(deleted.status).toBe(204);
    expect((await fetch(`${node.base}/api/products/${product.id}`)).status).toBe(404);
  });

  it("filters by active, currency, price range and stock", async () => {
    await send(
      "POST",
      "/api/products",
      widget("F-1", { name: "Filter cheap", price: { amount: 100, currency: "GBP" }, stock: 0 }),
    );
    await send(
      "POST",
      "/api/products",
      widget("F-2", { name: "Filter dear", price: { amount: 9000, currency: "GBP" }, active: false }),
    );
    const query = async (q: string) =>
      (await json<ProductPage>(await fetch(`${node.base}/api/products?search=Filter&${q}`))).rows.map((row) => row.sku);
    expect(await query("currency=GBP&sort=sku")).toEqual(["F-1", "F-2"]);
    expect(await query("active=false")).toEqual(["F-2"]);
    expect(await query("maxPrice=500")).toEqual(["F-1"]);
    expect(await query("minPrice=500&maxPrice=10000")).toEqual(["F-2"]);
    expect(await query("inStock=true")).toEqual(["F-2"]);
  });
});

describe("restarting on an existing database", () => {
  it("keeps the data and applies no migration twice", async () => {
    await node.broker.stop();
    const port = await freePort();
    node.broker = await startInProcessNode(
      testConfig(node.scope, { SERVICES: "api,auth,products", PORT: String(port) }),
    );
    node.base = `http://127.0.0.1:${port}`;
    const { rows } = await productsDb.query("SELECT name FROM schema_migrations");
    expect(rows).toHaveLength(productMigrations.length);
    const page = await json<ProductPage>(await fetch(`${node.base}/api/products?search=W-1`));
    expect(page.rows.map((row) => row.sku)).toContain("W-1");
  });
});
