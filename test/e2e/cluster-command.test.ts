/**
 * `npm run cluster`: NATS, the embedded PostgreSQL and the six roles as separate processes on their own ports; an
 * order placed through the gateway completes across them (saga, payment, shipping over NATS JetStream); one Ctrl-C
 * stops everything, leaving no process behind and no error in the log.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Order, OrderWithSaga } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { stopLeftoverPostgres } from "../../lib/embedded-postgres";
import { apiRequest, login, orderBody, registerCustomer } from "../../support/api";
import { json, processesUsing, ROOT, TEST_ADMIN, waitFor } from "../../support/nodes";
import { freePort, portFree } from "../../lib/ports";

const ROLES = 6;
let dataDir: string;
let cluster: ChildProcess;
let output = "";

/** The first of `count` consecutive free ports. */
async function freePortRange(count: number): Promise<number> {
  for (;;) {
    const first = await freePort();
    const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => portFree(first + 1 + i)));
    if (rest.every(Boolean)) return first;
  }
}

afterAll(async () => {
  // After a failed test: whatever is left of the cluster (npm's group, nats-server's own) goes.
  spawnSync("pkill", ["-KILL", "-f", dataDir]);
  await stopLeftoverPostgres(dataDir);
  await rm(dataDir, { recursive: true, force: true });
});

it("runs the roles as separate processes, completes an order across them, and stops on one Ctrl-C", async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-cluster-"));
  const port = await freePortRange(ROLES);
  cluster = spawn("npm", ["run", "cluster"], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: "development",
      DATABASE_URL: "",
      TRANSPORTER: "",
      DATA_DIR: dataDir,
      PORT: String(port),
      METRICS_PORT: String(await freePortRange(ROLES)),
      EMBEDDED_PG_PORT: String(await freePort()),
      CLUSTER_NATS_PORT: String(await freePort()),
      ADMIN_EMAIL: TEST_ADMIN.email,
      ADMIN_PASSWORD: TEST_ADMIN.password,
      LOG_FORMAT: "json",
      TRACING_EXPORTER: "none",
      RATE_LIMIT_AUTH: "100000",
    },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, signalled as a terminal's Ctrl-C signals the foreground group.
    detached: true,
  });
  const exited = new Promise<void>((resolve) => cluster.once("close", () => resolve()));
  cluster.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  cluster.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(async () => (output.includes("Cluster ready") ? true : undefined), 150_000, "the cluster to be ready");

  const base = `http://127.0.0.1:${port}`;
  const health = await json<{ nodes: { nodeID: string; ready: boolean }[] }>(await fetch(`${base}/api/health`));
  expect(health.nodes.map((node) => node.nodeID).sort()).toEqual(
    ["commerce", "gateway", "identity", "operations", "providers", "workflow"].sort(),
  );
  expect(health.nodes.every((node) => node.ready)).toBe(true);

  const admin = await login(base);
  const created = await apiRequest(base, admin, "POST", "/api/products", {
    sku: "CLUSTER-1",
    name: "Across the roles",
    price: { amount: 900, currency: "EUR" },
    stock: 10,
  });
  expect(created.status).toBe(201);
  const product = await json<Product>(created);
  const customer = await registerCustomer(base, "cluster@test.example");
  const placed = await apiRequest(base, customer, "POST", "/api/orders", orderBody(product.id, "Ada"));
  expect(placed.status).toBe(201);
  const order = await json<Order>(placed);
  const completed = await waitFor(
    async () => {
      const current = await json<OrderWithSaga>(await apiRequest(base, admin, "GET", `/api/orders/${order.id}`));
      return current.status === "COMPLETED" ? current : undefined;
    },
    30_000,
    "the order to complete",
  );
  expect(completed.saga?.status).toBe("COMPLETED");

  process.kill(-cluster.pid!, "SIGINT");
  await exited;
  // npm itself ends on the signal; the script's own line says it stopped everything in order.
  expect(output).toContain("[cluster] Stopped");
  expect(processesUsing(dataDir)).toEqual([]);
  const errors = output.split("\n").filter((line) => /"level":(50|60)/.test(line));
  expect(errors).toEqual([]);
}, 240_000);
