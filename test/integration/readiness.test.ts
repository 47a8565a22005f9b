/**
 * A fault test on a PostgreSQL this test owns: readiness turns 503 naming the database while the server is down,
 * and the node recovers by itself, with the data it had acknowledged, once the server is back.
 */
import type { ServiceBroker } from "moleculer";
import { startEmbeddedPostgres } from "../../lib/embedded-postgres";
import type { ClusterHealth, NodeReadiness } from "../../contracts/health";
import type { Product, ProductPage } from "../../contracts/products";
import { login } from "../../support/api";
import { type ErrorBody, isolation, json, testConfig, waitFor } from "../../support/nodes";
import { freePort, startTestPostgres } from "../../support/servers";
import { startInProcessNode } from "../support/nodes";

let postgres: Awaited<ReturnType<typeof startTestPostgres>>;
let broker: ServiceBroker;
let base: string;
let adminToken: string;

beforeAll(async () => {
  postgres = await startTestPostgres();
  const port = await freePort();
  broker = await startInProcessNode(
    testConfig(isolation(), { SERVICES: "api,auth,products", PORT: String(port), DATABASE_URL: postgres.url }),
  );
  base = `http://127.0.0.1:${port}`;
  adminToken = await login(base);
});

afterAll(async () => {
  await broker?.stop();
  await postgres?.stop();
});

const createProduct = (sku: string) =>
  fetch(`${base}/api/products`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ sku, name: sku, price: { amount: 100, currency: "EUR" } }),
  });

it("is ready while its database answers, 503 naming it while it is down, and ready again after", async () => {
  const acknowledged = await createProduct("BEFORE-OUTAGE");
  expect(acknowledged.status).toBe(201);
  const kept = await json<Product>(acknowledged);
  expect((await fetch(`${base}/health/ready`)).status).toBe(200);

  await postgres.server.stop();

  const down = await fetch(`${base}/health/ready`);
  expect(down.status).toBe(503);
  const error = await json<ErrorBody>(down);
  expect(error).toMatchObject({
    code: 503,
    type: "NOT_READY",
    data: { failing: ["database:auth", "database:products"] },
  });
  expect(await json<ClusterHealth>(await fetch(`${base}/api/health`))).toMatchObject({ status: "degraded" });
  expect((await fetch(`${base}/health/live`)).status).toBe(200);
  // The unreachable database is the service's retryable 503, answered once (the gateway does not re-run the request).
  const refused = await createProduct("DURING-OUTAGE");
  expect(refused.status).toBe(503);
  expect(await json<ErrorBody>(refused)).toMatchObject({
    type: "DEPENDENCY_UNAVAILABLE",
    data: { dependency: "database" },
  });

  const port = Number(new URL(postgres.url).port);
  postgres.server = await startEmbeddedPostgres({ dataDir: postgres.dataDir, port, log: () => undefined });

  await waitFor(
    async () => ((await fetch(`${base}/health/ready`)).status === 200 ? true : undefined),
    20_000,
    "readiness after the database came back",
  );
  const report = await json<NodeReadiness>(await fetch(`${base}/health/ready`));
  expect(report.checks.every((check) => check.ok)).toBe(true);
  expect((await createProduct("AFTER-OUTAGE")).status).toBe(201);
  const page = await json<ProductPage>(await fetch(`${base}/api/products?sort=sku`));
  expect(page.rows.map((row) => row.sku)).toEqual(["AFTER-OUTAGE", "BEFORE-OUTAGE"]);
  expect(page.rows.find((row) => row.sku === "BEFORE-OUTAGE")).toEqual(kept);
});
