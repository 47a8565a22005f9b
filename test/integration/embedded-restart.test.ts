/**
 * The single-process default (in-memory channels, no NATS) loses no message across a crash. The node kills itself
 * (crash point `consumer.committing:order.created`) once the saga engine's consumer has processed an order's
 * `order.created` and before its transaction commits: after the order and its event committed, and (with the
 * plain in-memory adapter) after the outbox had marked the event sent. Started again, its outbox
 * still holds the event unsent (the in-process publish only returns once the consumers are done), the relay
 * publishes it, and the order's saga completes, long before the orders service would re-announce the order.
 */
import { Client } from "pg";
import type { OrderWithSaga } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { apiRequest, login, orderBody } from "../../support/api";
import {
  crashed,
  dropScopeDatabases,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  scopedDatabaseUrl,
  startNodeProcess,
  waitFor,
} from "../../support/nodes";
import { freePort } from "../../support/servers";

const scope = isolation();
let node: NodeProcess | undefined;
let ordersDb: Client;

afterAll(async () => {
  await ordersDb?.end();
  await node?.stop("SIGKILL");
  await dropScopeDatabases(scope.prefix);
});

it("processes an event committed just before the process died, once it is started again", async () => {
  const port = await freePort();
  // The re-announce of a PENDING order is far off: only the outbox can bring the event back in time.
  const env = nodeEnv(scope, { TRANSPORTER: "", SERVICES: "", PORT: String(port), SAGA_STALL_AFTER: "600000" });
  node = await startNodeProcess(env);
  const base = `http://127.0.0.1:${port}`;
  let admin = await login(base);
  const product = await json<Product>(
    await apiRequest(base, admin, "POST", "/api/products", {
      sku: "EMBEDDED-1",
      name: "Embedded widget",
      price: { amount: 700, currency: "EUR" },
      stock: 10,
    }),
  );
  await node.stop("SIGTERM");

  node = await startNodeProcess({ ...env, FAILPOINTS: "consumer.committing:order.created" });
  admin = await login(base);
  // The answer may or may not get out before the process dies; the order is committed either way.
  await apiRequest(base, admin, "POST", "/api/orders", orderBody(product.id, "CRASH")).catch(() => undefined);
  expect(await crashed(node)).toBe("SIGKILL");
  ordersDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "orders") });
  await ordersDb.connect();
  const { rows } = await ordersDb.query<{ id: string; unsent: number }>(
    `SELECT o.id, (SELECT count(*)::int FROM outbox WHERE channel = 'order.created' AND sent_at IS NULL) AS unsent
     FROM orders o`,
  );
  expect(rows).toHaveLength(1);
  expect(rows[0].unsent).toBe(1);

  const restartedAt = Date.now();
  node = await startNodeProcess(env);
  admin = await login(base);
  const order = await waitFor(
    async () => {
      const current = await json<OrderWithSaga>(await apiRequest(base, admin, "GET", `/api/orders/${rows[0].id}`));
      return current.status === "COMPLETED" ? current : undefined;
    },
    30_000,
    "the order to complete after the restart",
  );
  expect(order.saga?.status).toBe("COMPLETED");
  expect(Date.now() - restartedAt).toBeLessThan(60_000);
});
