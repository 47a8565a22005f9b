/**
 * One trace across processes over the real NATS: an order placed on the gateway node runs its saga on another node
 * and calls the participants on a third; every node exports its spans with the Event exporter to the log store. The
 * request id the client sent is the trace id of every span, the request id of the log records and audit records the
 * order caused on all three nodes, and spans carry no secrets.
 */
import type { AuditPage } from "../../contracts/audit";
import type { LogPage, Trace } from "../../contracts/logs";
import type { Order } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { gatewayClient, login, orderBody, type GatewayTarget } from "../../support/api";
import {
  dropScopeDatabases,
  isolation,
  json,
  nodeEnv,
  type NodeProcess,
  startNodeProcess,
  TEST_ADMIN,
  testNatsUrl,
  waitFor,
} from "../../support/nodes";

const scope = isolation();
let nodes: NodeProcess[] = [];
const api: GatewayTarget = { base: "", token: "" };
const { send, settled } = gatewayClient(api);
const get = (path: string) => send("GET", path);

beforeAll(async () => {
  const common = { TRANSPORTER: testNatsUrl(), TRACING_EXPORTER: "event" };
  nodes = await Promise.all([
    startNodeProcess(
      nodeEnv(scope, { ...common, SERVICES: "api,auth,products,orders,audit,logs", NODE_ID: "trace-gateway" }),
    ),
    startNodeProcess(nodeEnv(scope, { ...common, SERVICES: "payments,shipping", NODE_ID: "trace-participants" })),
    startNodeProcess(nodeEnv(scope, { ...common, SERVICES: "sagas", NODE_ID: "trace-sagas" })),
  ]);
  api.base = `http://127.0.0.1:${nodes[0].port}`;
  api.token = await login(api.base);
}, 90_000);

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
  await dropScopeDatabases(scope.prefix);
});

it("follows an order from the HTTP request through the saga's steps on other nodes, in spans, logs and audit", async () => {
  const product = await json<Product>(
    await waitFor(async () => {
      const res = await send("POST", "/api/products", {
        sku: "TRACE-1",
        name: "Traced widget",
        price: { amount: 900, currency: "EUR" },
        stock: 10,
      });
      return res.status === 404 ? undefined : res;
    }),
  );
  const placed = await send("POST", "/api/orders", orderBody(product.id, "Trace"));
  expect(placed.status).toBe(201);
  // The gateway's request id is the trace id of all the request's work.
  const traceId = placed.headers.get("x-request-id")!;
  const order = await json<Order>(placed);
  expect((await settled(order.id)).status).toBe("COMPLETED");

  // Spans are exported every 5 s by each node.
  const trace = await waitFor(
    async () => {
      const res = await get(`/api/logs/traces/${traceId}`);
      if (res.status !== 200) return undefined;
      const body = await json<Trace>(res);
      const names = new Set(body.spans.map((span) => span.name));
      const complete = ["action 'payments.charge'", "action 'shipping.create'", "action 'orders.transition'"];
      // Each node sends its spans on its own 5 s timer: wait for the saga engine's too.
      const sagaSteps = body.spans.some((span) => span.type === "saga" && span.tags.step === "payment");
      return complete.every((name) => names.has(name)) && sagaSteps ? body : undefined;
    },
    30_000,
    "the order's spans from every node",
  );
  expect(trace.spans.every((span) => span.traceId === traceId)).toBe(true);
  const spanNodes = new Set(trace.spans.map((span) => span.nodeId));
  expect([...spanNodes].sort()).toEqual(["trace-gateway", "trace-participants", "trace-sagas"]);
  // One span set per request: the HTTP entry (moleculer-web's `api.rest`) has none of its own, so the routed
  // action's span is the first of the trace (its parent is the request's context, which no span stands for).
  expect(trace.spans.filter((span) => span.service === "api")).toEqual([]);
  const created = trace.spans.find((span) => span.name === "action 'orders.create'");
  expect(created).toMatchObject({ nodeId: "trace-gateway", service: "orders", error: null });
  expect(trace.spans.some((span) => span.spanId === created!.parentId)).toBe(false);
  // The saga node's step is the parent of the participant's action span.
  const step = trace.spans.find((span) => span.type === "saga" && span.tags.step === "payment");
  expect(step).toMatchObject({ nodeId: "trace-sagas", tags: expect.objectContaining({ outcome: "ok" }) });
  expect(trace.spans.find((span) => span.name === "action 'payments.charge'")).toMatchObject({
    nodeId: "trace-participants",
    parentId: step!.spanId,
    tags: expect.objectContaining({ params: expect.objectContaining({ orderId: order.id, amount: 900 }) }),
  });

  const logs = await json<LogPage>(await get(`/api/logs?requestId=${traceId}&pageSize=200`));
  const logNodes = new Set(logs.rows.map((row) => row.nodeId));
  expect(logNodes.has("trace-gateway")).toBe(true);
  expect(
    logs.rows.some((row) => row.nodeId === "trace-participants" && row.message.startsWith("Charged 900 EUR")),
  ).toBe(true);

  const audit = await waitFor(async () => {
    const page = await json<AuditPage>(await get(`/api/audit?requestId=${traceId}&pageSize=100`));
    return page.rows.some((row) => row.name === "shipping.create") ? page : undefined;
  });
  expect(audit.rows.map((row) => row.name)).toEqual(
    expect.arrayContaining(["orders.create", "payments.charge", "shipping.create", "order.created"]),
  );
});

it("keeps secrets out of stored spans", async () => {
  const signedIn = await fetch(`${api.base}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(TEST_ADMIN),
  });
  const traceId = signedIn.headers.get("x-request-id")!;
  const trace = await waitFor(
    async () => {
      const res = await get(`/api/logs/traces/${traceId}`);
      return res.status === 200 ? json<Trace>(res) : undefined;
    },
    20_000,
    "the login's spans",
  );
  const login = trace.spans.find((span) => span.name === "action 'auth.login'");
  expect(login?.tags.params).toEqual({ email: TEST_ADMIN.email, password: "[redacted]" });
  expect(JSON.stringify(trace)).not.toContain(TEST_ADMIN.password);
  expect((await get(`/api/logs/traces/no-such-trace`)).status).toBe(404);
});
