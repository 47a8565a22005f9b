/**
 * The single-process default loses no message across a restart: a saga compensating (its refund failing in a
 * simulated outage) when the process is stopped with Ctrl-C resumes after `npm start` and ends COMPENSATED with the
 * payment refunded. Before, the relay published the saga's due step the moment the sagas service started, before
 * the in-memory channels had subscribers, so it reached no one and the saga stayed COMPENSATING for good.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Order, OrderWithSaga } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { stopLeftoverPostgres } from "../../lib/embedded-postgres";
import type { Page } from "../../lib/paging";
import { apiRequest, login, orderBody, registerCustomer } from "../../support/api";
import { json, killLeftoverNodes, type NodeProcess, startNodeProcess, TEST_ADMIN, waitFor } from "../../support/nodes";
import { freePort } from "../../support/servers";

let dataDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-restart-"));
  env = {
    NODE_ENV: "development",
    DATABASE_URL: "",
    TRANSPORTER: "",
    SERVICES: "",
    DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await freePort()),
    METRICS_PORT: "0",
    LOG_FORMAT: "json",
    TRACING_EXPORTER: "none",
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
    RATE_LIMIT_AUTH: "100000",
    RATE_LIMIT_IP: "100000",
    // Compensation retries 0.5, 1, 2, 4 … s apart: the next one falls due while the process is down.
    SAGA_RETRY_DELAY: "500",
    SAGA_COMPENSATION_ATTEMPTS: "10",
  };
});

afterAll(async () => {
  await killLeftoverNodes();
  await stopLeftoverPostgres(dataDir);
  await rm(dataDir, { recursive: true, force: true });
});

it("resumes a compensating saga after the single process is stopped and started again", async () => {
  let node: NodeProcess = await startNodeProcess(env, { viaNpmStart: true, timeoutMs: 90_000 });
  const base = () => `http://127.0.0.1:${node.port}`;
  const admin = await login(base());
  const asAdmin = (method: string, route: string, body?: unknown) => apiRequest(base(), admin, method, route, body);

  const created = await asAdmin("POST", "/api/products", {
    sku: "RESTART-1",
    name: "Shipped nowhere",
    price: { amount: 700, currency: "EUR" },
    stock: 10,
  });
  expect(created.status).toBe(201);
  const product = await json<Product>(created);
  expect((await asAdmin("POST", "/api/payments/refund-outage", { durationMs: 600_000 })).status).toBe(200);
  const customer = await registerCustomer(base(), "restart@test.example");
  const placed = await apiRequest(
    base(),
    customer,
    "POST",
    "/api/orders",
    orderBody(product.id, "ZZ", { country: "ZZ" }),
  );
  expect(placed.status).toBe(201);
  const order = await json<Order>(placed);
  const orderOf = async () => json<OrderWithSaga>(await asAdmin("GET", `/api/orders/${order.id}`));

  await waitFor(
    async () => ((await orderOf()).saga?.status === "COMPENSATING" ? true : undefined),
    30_000,
    "the saga to compensate",
  );
  await node.stop("SIGINT");
  expect(node.output()).toContain("Embedded PostgreSQL stopped");

  // The outage was this process's: the started one refunds.
  node = await startNodeProcess(env, { viaNpmStart: true, timeoutMs: 90_000 });
  try {
    const settled = await waitFor(
      async () => {
        const current = await orderOf();
        return current.saga?.status === "COMPENSATED" ? current : undefined;
      },
      45_000,
      "the saga to end compensated after the restart",
    );
    expect(settled.status).toBe("COMPENSATED");
    const payments = await json<Page<{ status: string }>>(await asAdmin("GET", `/api/payments?orderId=${order.id}`));
    expect(payments.rows.map((payment) => payment.status)).toEqual(["REFUNDED"]);
  } finally {
    await node.stop("SIGTERM");
  }
}, 240_000);
