/**
 * Overload slows intake and drops nothing inside. Orders offered open loop at several times what the system completes
 * on two cores (~25–30 sagas/s; bench/README.md), with ORDERS_MAX_BACKLOG at 150, while readiness is polled every
 * second as Kubernetes does, to two systems on the real PostgreSQL: one node process with every service on the
 * embedded default's wiring (in-memory channels), and a cluster of three processes over NATS JetStream (gateway and
 * orders; saga engine and dead letters; participants and audit). Every answer is 201 or 503 `OVERLOADED` with
 * `Retry-After`; every accepted order (happy-path cards) ends COMPLETED, so none was compensated because the system was
 * busy; nothing is dead-lettered; and the gateway stays ready throughout. The long version (twice the measured
 * saturation for a minute, in a cluster) is `CHAOS_FAULTS=none CHAOS_RATE=60 CHAOS_ORDERS=3600 npm run chaos`.
 */
import { Client } from "pg";
import type { Order } from "../../contracts/orders";
import type { DeadLetterPage } from "../../contracts/dead-letters";
import { gatewayClient, login, orderBody } from "../../support/api";
import {
  dropScopeDatabases,
  type ErrorBody,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  scopedDatabaseUrl,
  startNodeProcess,
  testNatsUrl,
  waitFor,
} from "../../support/nodes";

const SECONDS = 15;
const MAX_BACKLOG = 150;
const OVERLOAD_ENV = {
  ORDERS_MAX_BACKLOG: String(MAX_BACKLOG),
  // One client sends it all: the per-user limit (a 429, also with Retry-After) would otherwise refuse first.
  RATE_LIMIT_USER: "100000",
};

const scope = isolation();
const nodes: NodeProcess[] = [];
let ordersDb: Client;

afterEach(async () => {
  await ordersDb?.end();
  await Promise.all(nodes.splice(0).map((node) => node.stop("SIGTERM")));
  await dropScopeDatabases(scope.prefix);
});

/** Offers `rate` orders per second for SECONDS through `base`, then checks what became of every one of them. */
async function overload(base: string, rate: number) {
  const { send, createProduct } = gatewayClient({ base, token: await login(base) });
  ordersDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "orders") });
  await ordersDb.connect();
  const product = await createProduct({
    sku: "OVERLOAD-1",
    name: "Overload widget",
    price: { amount: 700, currency: "EUR" },
    stock: 1_000_000,
  });

  const readiness: number[] = [];
  const probe = setInterval(() => {
    fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(5000) })
      .then((res) => readiness.push(res.status))
      .catch(() => readiness.push(0));
  }, 1000);

  // Open loop: each POST leaves at its scheduled time, whether or not the earlier ones have been answered.
  const answers: Promise<Response>[] = [];
  const started = Date.now();
  for (let i = 0; i < rate * SECONDS; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - Date.now();
    // Pacing, not waiting for a condition: the offered rate is the test's input.
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
}

it("one process: refuses the excess at intake with 503 and Retry-After, stays ready, completes every accepted order", async () => {
  const node = await startNodeProcess(nodeEnv(scope, { TRANSPORTER: "", SERVICES: "", ...OVERLOAD_ENV }));
  nodes.push(node);
  await overload(`http://127.0.0.1:${node.port}`, 80);
}, 240_000);

it("a cluster over NATS: the same at intake, with the saga engine and the participants on other nodes", async () => {
  const env = nodeEnv(scope, { TRANSPORTER: testNatsUrl(), ...OVERLOAD_ENV });
  const gateway = await startNodeProcess({ ...env, SERVICES: "api,auth,products,orders", NODE_ID: "gateway" });
  nodes.push(gateway);
  nodes.push(
    ...(await Promise.all([
      startNodeProcess({ ...env, SERVICES: "sagas,dlq", NODE_ID: "engine" }),
      startNodeProcess({ ...env, SERVICES: "payments,shipping,audit", NODE_ID: "participants" }),
    ])),
  );
  await overload(`http://127.0.0.1:${gateway.port}`, 60);
}, 240_000);
