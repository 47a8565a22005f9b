/**
 * The two commands: `npm start` on the embedded default (no DATABASE_URL, no transporter) runs the whole system with
 * an embedded PostgreSQL under DATA_DIR; Ctrl-C stops it cleanly with nothing left running; the next start reuses
 * the data.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Product, ProductPage } from "../../contracts/products";
import type { ClusterHealth } from "../../contracts/health";
import { login } from "../../support/api";
import { json, killLeftoverNodes, processesUsing, startNodeProcess } from "../../support/nodes";
import { freePort } from "../../support/servers";
import { stopLeftoverPostgres } from "../../lib/embedded-postgres";

let dataDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-e2e-"));
  env = {
    NODE_ENV: "development",
    DATABASE_URL: "",
    TRANSPORTER: "",
    SERVICES: "",
    DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await freePort()),
    METRICS_PORT: String(await freePort()),
    LOG_FORMAT: "json",
    TRACING_EXPORTER: "none",
  };
});

afterAll(async () => {
  await killLeftoverNodes();
  await stopLeftoverPostgres(dataDir);
  await rm(dataDir, { recursive: true, force: true });
});

it("runs the whole system on the embedded default, stops on Ctrl-C, and keeps its data for the next start", async () => {
  const first = await startNodeProcess(env, { viaNpmStart: true });
  const base = `http://127.0.0.1:${first.port}`;
  expect(first.output()).toContain("Embedded PostgreSQL started");

  const health = await json<ClusterHealth>(await fetch(`${base}/api/health`));
  expect(health).toMatchObject({
    status: "ok",
    nodes: [
      {
        ready: true,
        services: [
          "health",
          "api",
          "auth",
          "products",
          "orders",
          "audit",
          "logs",
          "exec",
          "dlq",
          "payments",
          "shipping",
          "sagas",
          "alerts",
        ],
      },
    ],
  });
  const metrics = await fetch(`http://127.0.0.1:${env.METRICS_PORT}/metrics`);
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toMatch(/moleculer_request_total/);

  // No ADMIN_PASSWORD in development: the first admin gets a generated password, printed once on the terminal, which
  // must be changed at the first sign-in.
  const generated = /Generated password \(shown once[^)]*\): (\S+)/.exec(first.output());
  expect(generated).not.toBeNull();
  const changed = await fetch(`${base}/api/auth/password`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      email: "admin@aicunet.local",
      currentPassword: generated![1],
      newPassword: "the-admins-own-password",
    }),
  });
  expect(changed.status).toBe(200);
  const token = await login(base, { email: "admin@aicunet.local", password: "the-admins-own-password" });
  const created = await fetch(`${base}/api/products`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ sku: "KEEP-1", name: "Kept across restarts", price: { amount: 4200, currency: "EUR" } }),
  });
  expect(created.status).toBe(201);
  const product = await json<Product>(created);

  expect(processesUsing(dataDir).length).toBeGreaterThan(0);
  // Ctrl-C in a terminal signals the whole foreground process group: npm, its shell and the node.
  await first.stop("SIGINT");
  expect(first.output()).toContain("SIGINT received: shutting down");
  expect(first.output()).toContain("Embedded PostgreSQL stopped");
  expect(first.output()).toContain("ServiceBroker is stopped");
  expect(first.output()).not.toContain("exiting without waiting");
  expect(processesUsing(dataDir)).toEqual([]);

  const second = await startNodeProcess(env, { viaNpmStart: true });
  try {
    expect(second.output()).not.toContain("Creating the embedded PostgreSQL cluster");
    expect(second.output()).not.toContain("Generated password");
    const page = await json<ProductPage>(await fetch(`http://127.0.0.1:${second.port}/api/products`));
    expect(page.rows).toEqual([product]);
  } finally {
    await second.stop("SIGTERM");
  }
  expect(second.output()).toContain("Embedded PostgreSQL stopped");
  expect(processesUsing(dataDir)).toEqual([]);
});
