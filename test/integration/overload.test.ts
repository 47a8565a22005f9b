/**
 * Overload slows intake and drops nothing inside. One node process with every service on the embedded default's
 * wiring (in-memory channels) and the real PostgreSQL, offered orders open loop at several times what it completes
 * on two cores (~25–30 sagas/s; bench/README.md), with ORDERS_MAX_BACKLOG at 150, while readiness is polled every
 * second as Kubernetes does. Every answer is 201 or 503 `OVERLOADED` with `Retry-After`; every accepted order
 * (happy-path cards) ends COMPLETED, so none was compensated because the node was busy; nothing is dead-lettered; and
 * the node stays ready throughout. The long version (twice the measured saturation for a minute, in a cluster too)
 * is `npm run chaos` in bench/.
 */
import { Client } from "pg";
import type { Order } from "../../services/orders.service";
import type { Product } from "../../services/products.service";
import type { DeadLetterPage } from "../../services/dlq.service";
import { apiRequest, orderBody } from "../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  login,
  nodeEnv,
  scopedDatabaseUrl,
  startNodeProcess,
  waitFor,
  type ErrorBody,
  type NodeProcess,
} from "../support/nodes";

const RATE_PER_SECOND = 80;
const SECONDS = 15;
const MAX_BACKLOG = 150;

const scope = isolation();
let node: NodeProcess;
let base: string;
let admin: string;
let ordersDb: Client;

const send = (method: string, path: string, body?: unknown) => apiRequest(base, admin, method, path, body);

beforeAll(async () => {
  node = await startNodeProcess(
    nodeEnv(scope, {
      TRANSPORTER: "",
      SERVICES: "",
      ORDERS_MAX_BACKLOG: String(MAX_BACKLOG),
      // One client sends it all: the per-user limit (a 429, also with Retry-After) would otherwise refuse first.
      RATE_LIMIT_USER: "100000",
    }),
  );
  base = `http://127.0.0.1:${node.port}`;
  admin = await login(base);
  ordersDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "orders") });
  await ordersDb.connect();
}, 60_000);

afterAll(async () => {
  await ordersDb?.end();
  await node?.stop("SIGTERM");
  await dropScopeDatabases(scope.prefix);
});

it("refuses the excess at intake with 503 and Retry-After, stays ready, and completes every accepted order", async () => {
  const created = await send("POST", "/api/products", {
    sku: "OVERLOAD-1",
    name: "Overload widget",
    price: { amount: 700, currency: "EUR" },
    stock: 1_000_000,
  });
  expect(created.status).toBe(201);
  const product = await json<Product>(created);

  const readiness: number[] = [];
  const probe = setInterval(() => {
    fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(5000) })
      .then((res) => readiness.push(res.status))
      .catch(() => readiness.push(0));
  }, 1000);

  // Open loop: each POST leaves at its scheduled time, whether or not the earlier ones have been answered.
  const answers: Promise<Response>[] = [];
  const started = Date.now();
  for (let i = 0; i < RATE_PER_SECOND * SECONDS; i++) {
    const due = started + (i * 1000) / RATE_PER_SECOND;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    answers.push(send("POST", "/api/orders", orderBody(product.id, `OVERLOAD-${i}`)));
  }
  const responses = await Promise.all(answers);
  clearInterval(probe);

  const accepted = responses.filter((res) => res.status === 201);
  const refused = responses.filter((res) => res.status === 503);
  expect(responses.filter((res) => res.status !== 201 && res.status !== 503).map((res) => res.status)).toEqual([]);
  // It was overloaded: orders were refused, and it took more than the bound while the backlog drained.
  expect(refused.length).toBeGreaterThan(0);
  expect(accepted.length).toBeGreaterThan(MAX_BACKLOG);
  for (const res of refused) {
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await json<ErrorBody>(res)).toMatchObject({ type: "OVERLOADED" });
  }
  expect(readiness.length).toBeGreaterThanOrEqual(SECONDS - 2);
  expect(readiness.filter((status) => status !== 200)).toEqual([]);

  const ids = (await Promise.all(accepted.map((res) => json<Order>(res)))).map((order) => order.id);
  // A refused order left nothing: the database holds exactly the accepted ones.
  const { rows: stored } = await ordersDb.query<{ count: number }>("SELECT count(*)::int AS count FROM orders");
  expect(stored[0].count).toBe(ids.length);
  await waitFor(
    async () => {
      const { rows } = await ordersDb.query<{ count: number }>(
        "SELECT count(*)::int AS count FROM orders WHERE status NOT IN ('PENDING', 'PAID', 'SHIPPED')",
      );
      return rows[0].count === ids.length ? true : undefined;
    },
    120_000,
    `all ${ids.length} accepted orders to end`,
  );
  const { rows: outcomes } = await ordersDb.query<{ status: string; count: number }>(
    "SELECT status, count(*)::int AS count FROM orders GROUP BY status",
  );
  expect(outcomes).toEqual([{ status: "COMPLETED", count: ids.length }]);
  const deadLetters = await json<DeadLetterPage>(await send("GET", "/api/dlq?status=PENDING"));
  expect(deadLetters.total).toBe(0);
}, 240_000);
