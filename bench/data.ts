/**
 * Data services through the gateway against the bare `pg` rate of the same SQL, in the same run (issue 4):
 * - product list: `GET /api/products?pageSize=20` vs the page and count queries the service runs, on a `pg` pool;
 * - order create: `POST /api/orders` (token verification, two product lookups, the order and its lines in one
 *   transaction) vs the same INSERTs in one transaction on a `pg` pool.
 * The node runs api, auth, products and orders in one process (no transporter), on `DATABASE_URL` or an embedded
 * PostgreSQL; the pool has as many connections as the load has.
 */
import { randomUUID } from "node:crypto";
import autocannon from "autocannon";
import { Pool } from "pg";
import { databaseUrlFor } from "../lib/database";
import { loadConfig } from "../lib/config";
import type { Product } from "../contracts/products";
import { PRODUCT_PAGE_SQL } from "./product-page";

export interface RateResult {
  target: string;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Runs `work` from `concurrency` loops for `seconds` and reports completions per second and latency percentiles. */
export async function measureLoop(target: string, concurrency: number, seconds: number, work: () => Promise<unknown>) {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const started = performance.now();
        try {
          await work();
          latencies.push(performance.now() - started);
        } catch {
          errors++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return { target, requestsPerSecond: Math.round(latencies.length / seconds), p50: at(0.5), p99: at(0.99), errors };
}

/** An HTTP route's rate under autocannon: 2 s of warm-up (JIT, pools, caches), then the measured run. */
export async function httpRate(
  target: string,
  url: string,
  connections: number,
  seconds: number,
  options: { method?: "GET" | "POST"; headers?: Record<string, string>; body?: string } = {},
): Promise<RateResult> {
  await autocannon({ url, connections, duration: 2, ...options });
  const result = await autocannon({ url, connections, duration: seconds, ...options });
  return {
    target,
    requestsPerSecond: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

export interface DataBenchSetup {
  base: string;
  adminToken: string;
  customerToken: string;
  env: Record<string, string>;
}

/** Seeds products and returns the ids the order body uses. */
export async function seedProducts(setup: DataBenchSetup, count: number): Promise<Product[]> {
  const created: Product[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${setup.base}/api/products`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${setup.adminToken}` },
      body: JSON.stringify({
        sku: `BENCH-${i}`,
        name: `Bench product ${i}`,
        price: { amount: 100 + i, currency: "EUR" },
        stock: 1000,
      }),
    });
    created.push((await res.json()) as Product);
  }
  return created;
}

/** The database of one of the bench node's services, as the node names it from its environment. */
export function serviceDatabaseUrl(setup: Pick<DataBenchSetup, "env">, service: "products" | "orders"): string {
  return databaseUrlFor(service, loadConfig({ ...process.env, ...setup.env }));
}

export async function dataPairs(setup: DataBenchSetup, connections: number, seconds: number) {
  const productsPool = new Pool({ connectionString: serviceDatabaseUrl(setup, "products"), max: connections });
  const ordersPool = new Pool({ connectionString: serviceDatabaseUrl(setup, "orders"), max: connections });
  try {
    const products = await seedProducts(setup, 200);
    const orderBody = {
      items: [
        { productId: products[0].id, quantity: 2 },
        { productId: products[1].id, quantity: 1 },
      ],
      shippingAddress: { name: "Bench", street: "1 Load St", city: "Testing", postalCode: "00000", country: "DE" },
      paymentMethod: "pm_card_ok",
    };

    const listViaGateway = await httpRate(
      "GET /api/products (gateway)",
      `${setup.base}/api/products?pageSize=20`,
      connections,
      seconds,
    );
    const listBare = await measureLoop("same query on pg", connections, seconds, () =>
      productsPool.query(PRODUCT_PAGE_SQL, [20]),
    );

    const createViaGateway = await httpRate(
      "POST /api/orders (gateway)",
      `${setup.base}/api/orders`,
      connections,
      seconds,
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${setup.customerToken}` },
        body: JSON.stringify(orderBody),
      },
    );
    const customerId = randomUUID();
    const createBare = await measureLoop("same INSERTs on pg", connections, seconds, async () => {
      const client = await ordersPool.connect();
      try {
        const id = randomUUID();
        await client.query("BEGIN");
        await client.query(
          `INSERT INTO orders (id, customer_id, status, currency, total_amount, shipping_address, payment_method, request_hash)
           VALUES ($1, $2, 'PENDING', 'EUR', 301, $3, 'pm_card_ok', $4)`,
          [id, customerId, JSON.stringify(orderBody.shippingAddress), "0".repeat(64)],
        );
        for (const [index, item] of orderBody.items.entries()) {
          await client.query(
            `INSERT INTO order_lines (order_id, line_no, product_id, sku, name, quantity, unit_price_amount)
             VALUES ($1, $2, $3, 'SKU', 'Name', $4, 100)`,
            [id, index + 1, item.productId, item.quantity],
          );
        }
        await client.query("COMMIT");
      } finally {
        client.release();
      }
    });
    return { list: [listBare, listViaGateway], create: [createBare, createViaGateway] } as const;
  } finally {
    await Promise.all([productsPool.end(), ordersPool.end()]);
  }
}
