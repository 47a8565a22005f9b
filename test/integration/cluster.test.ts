/**
 * Distribution over the real NATS: nodes in separate OS processes, started as `npm start` starts them, with
 * `SERVICES` choosing each one's role. A REST call on the gateway node is served by the products node, and the
 * cluster health lists both; a node that is killed shows as lost, and the alerts service (on the gateway node) sends
 * a node-health alert to a real webhook receiver.
 */
import type { Product } from "../../contracts/products";
import type { ClusterHealth } from "../../contracts/health";
import { login } from "../../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  startNodeProcess,
  testNatsUrl,
  waitFor,
} from "../../support/nodes";
import { startWebhookReceiver, type WebhookReceiver } from "../support/sinks";

const scope = isolation();
let productsNode: NodeProcess;
let gatewayNode: NodeProcess;
let base: string;
let webhook: WebhookReceiver;

beforeAll(async () => {
  webhook = await startWebhookReceiver();
  const transport = { TRANSPORTER: testNatsUrl() };
  const alerting = { ALERT_INTERVAL: "500", ALERT_WEBHOOK_URL: webhook.url };
  [productsNode, gatewayNode] = await Promise.all([
    startNodeProcess(nodeEnv(scope, { ...transport, SERVICES: "auth,products", NODE_ID: "products-node" })),
    startNodeProcess(nodeEnv(scope, { ...transport, ...alerting, SERVICES: "api,alerts", NODE_ID: "gateway-node" })),
  ]);
  base = `http://127.0.0.1:${gatewayNode.port}`;
});

afterAll(async () => {
  await Promise.all([productsNode?.stop("SIGKILL"), gatewayNode?.stop("SIGKILL"), webhook?.stop()]);
  await dropScopeDatabases(scope.prefix);
});

/** The records a node wrote at level error or above (its output is JSON lines, one record each). */
function errorRecords(node: NodeProcess): string[] {
  return node
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{") && (JSON.parse(line) as { level: number }).level >= 50);
}

it("starts clean: neither node logs an error on the way to ready", () => {
  expect(errorRecords(productsNode)).toEqual([]);
  expect(errorRecords(gatewayNode)).toEqual([]);
});

it("routes a REST call on the gateway node to the products service on the other node", async () => {
  const res = await waitFor(
    async () => {
      const attempt = await fetch(`${base}/api/products`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${await login(base)}` },
        body: JSON.stringify({ sku: "REMOTE-1", name: "Remote widget", price: { amount: 500, currency: "USD" } }),
      });
      return attempt.status === 404 ? undefined : attempt;
    },
    20_000,
    "the gateway to learn the products routes",
  );
  expect(res.status).toBe(201);
  const created = await json<Product>(res);
  const fetched = await json<Product>(await fetch(`${base}/api/products/${created.id}`));
  expect(fetched).toEqual(created);
});

it("lists both nodes, their services and their checks in the cluster health", async () => {
  const health = await waitFor(
    async () => {
      const body = await json<ClusterHealth>(await fetch(`${base}/api/health`));
      return body.nodes.length === 2 ? body : undefined;
    },
    20_000,
    "both nodes in the cluster health",
  );
  expect(health.status).toBe("ok");
  const byId = Object.fromEntries(health.nodes.map((node) => [node.nodeID, node]));
  expect(byId["products-node"]).toMatchObject({
    available: true,
    ready: true,
    services: ["health", "auth", "products"],
  });
  expect(byId["products-node"].checks.map((check) => check.name)).toEqual([
    "broker",
    "transporter",
    "database:auth",
    "auth:signing-key",
    "database:products",
  ]);
  expect(byId["gateway-node"]).toMatchObject({ available: true, ready: true, services: ["health", "api", "alerts"] });
  expect(byId["gateway-node"].checks.map((check) => check.name)).toEqual([
    "broker",
    "transporter",
    "gateway:routes",
    "database:alerts",
  ]);
});

it("answers the health probes on PORT on a node without the gateway too", async () => {
  const probe = `http://127.0.0.1:${productsNode.port}`;
  expect(await json<{ status: string; nodeID: string }>(await fetch(`${probe}/health/live`))).toMatchObject({
    status: "ok",
    nodeID: "products-node",
  });
  const ready = await fetch(`${probe}/health/ready`);
  expect(ready.status).toBe(200);
  expect(await json<{ ready: boolean; services: string[] }>(ready)).toMatchObject({
    ready: true,
    services: ["health", "auth", "products"],
  });
  expect((await fetch(`${probe}/api/products`)).status).toBe(404);
});

it("reports a killed node as lost and the cluster as degraded", async () => {
  await productsNode.stop("SIGKILL");
  // No goodbye from a killed node: its report calls fail at once (degraded), and when its heartbeats have been
  // missing for the heartbeat timeout (15 s) the gateway marks it lost.
  const health = await waitFor(
    async () => {
      const body = await json<ClusterHealth>(await fetch(`${base}/api/health`));
      return body.nodes.some((node) => node.nodeID === "products-node" && node.state === "lost") ? body : undefined;
    },
    40_000,
    "the killed node to show as lost",
  );
  expect(health.status).toBe("degraded");
  expect(health.nodes.find((node) => node.nodeID === "products-node")).toMatchObject({
    available: false,
    ready: false,
  });
  // Its routes are gone (404) once the gateway has regenerated them, 503 NOT_AVAILABLE until then.
  const res = await fetch(`${base}/api/products`);
  expect([404, 503]).toContain(res.status);
  // The alerts service saw the node vanish without a goodbye and said so, once.
  await waitFor(async () => (webhook.bodies.length > 0 ? true : undefined), 10_000, "the node-health alert");
  expect(webhook.bodies).toEqual([
    {
      text: expect.stringMatching(
        /^\[AiCUnet\] FIRING node-health: Node products-node is gone \(lost unexpectedly\)\n/,
      ),
    },
  ]);
});
