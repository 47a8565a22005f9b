/**
 * Graceful shutdown: a stopping node stops accepting HTTP but finishes the requests it has already accepted.
 */
import { Agent, get } from "node:http";
import type { ServiceSchema } from "moleculer";
import { apiRequest, login, orderBody } from "../../support/api";
import { dropScopeDatabases, isolation, json, testConfig, waitFor } from "../../support/nodes";
import { freePort } from "../../support/servers";
import { startInProcessNode } from "../support/nodes";

const scope = isolation();
afterAll(() => dropScopeDatabases(scope.prefix));

/** Requests the slow action has begun: a test stops the node once its request is in flight. */
let begun = 0;
const inFlight = (before: number) =>
  waitFor(async () => (begun > before ? true : undefined), 5000, "the request to begin");

/** A request that takes a while, standing in for any slow action. */
const slowService: ServiceSchema = {
  name: "slow",
  actions: {
    wait: {
      rest: "GET /wait",
      permissions: "public",
      async handler() {
        begun += 1;
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return { finished: true };
      },
    },
  },
};

it("finishes an in-flight request, then refuses new connections", async () => {
  const port = await freePort();
  const broker = await startInProcessNode(testConfig(scope, { SERVICES: "api", PORT: String(port) }), [slowService]);
  const base = `http://127.0.0.1:${port}`;

  const before = begun;
  const request = fetch(`${base}/api/slow/wait`);
  let answered = false;
  void request.then(
    () => (answered = true),
    () => undefined,
  );
  await inFlight(before);
  const stopping = broker.stop();

  await waitFor(
    () =>
      fetch(`${base}/health/live`).then(
        () => undefined,
        () => true,
      ),
    5000,
    "new connections to be refused",
  );
  // Refused while the accepted request is still being worked on.
  expect(answered).toBe(false);
  const res = await request;
  expect(res.status).toBe(200);
  expect(await json<{ finished: boolean }>(res)).toEqual({ finished: true });
  await stopping;
});

it("closes the connections its finished requests leave open once it has stopped", async () => {
  const port = await freePort();
  const broker = await startInProcessNode(testConfig(scope, { SERVICES: "api", PORT: String(port) }), [slowService]);
  // A keep-alive client, as browsers and load balancers are: its connection outlives the request.
  const agent = new Agent({ keepAlive: true });
  const before = begun;
  const socketClosed = new Promise<void>((resolve, reject) => {
    const req = get(`http://127.0.0.1:${port}/api/slow/wait`, { agent }, (res) => res.resume());
    req.once("socket", (socket) => socket.once("close", () => resolve()));
    req.once("error", reject);
  });
  await inFlight(before);
  await broker.stop();
  // Without the server closing it, the idle connection would stay open for the keep-alive timeout (5 s).
  await expect(
    Promise.race([
      socketClosed.then(() => "closed"),
      new Promise((resolve) => setTimeout(() => resolve("still open"), 1000)),
    ]),
  ).resolves.toBe("closed");
  agent.destroy();
});

/** Statuses of `url` polled every 20 ms for `ms`: what a client sees while the gateway's routes change. */
async function pollStatuses(url: string, ms: number): Promise<number[]> {
  const statuses: number[] = [];
  for (const end = Date.now() + ms; Date.now() < end;) {
    statuses.push((await fetch(url)).status);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return statuses;
}

it("answers 503 naming the service, with Retry-After, for a route whose service has left", async () => {
  const port = await freePort();
  const broker = await startInProcessNode(testConfig(scope, { SERVICES: "api,products", PORT: String(port) }));
  const base = `http://127.0.0.1:${port}`;
  try {
    expect((await fetch(`${base}/api/products`)).status).toBe(200);
    const products = broker.getLocalService("products")!;
    const schema = (products as unknown as { originalSchema: ServiceSchema }).originalSchema;
    const leaving = pollStatuses(`${base}/api/products`, 1500);
    await broker.destroyService(products);
    // While it stops (its database closed under a call) and while its routes are still built (the gateway rebuilds
    // them after a debounce, the call finding no service): unavailable too, never 404 nor 500.
    expect((await leaving).filter((status) => status !== 200 && status !== 503)).toEqual([]);
    // Its routes go with it (the gateway regenerates them when the registry changes): not 404, but unavailable.
    const res = await waitFor(
      async () => {
        const answer = await fetch(`${base}/api/products`);
        return answer.status === 200 ? undefined : answer;
      },
      10_000,
      "the products routes to go",
    );
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await json<{ type: string; data: object }>(res)).toMatchObject({
      type: "SERVICE_UNAVAILABLE",
      data: { service: "products" },
    });
    // A path no service of the platform owns is still plainly not found.
    expect((await fetch(`${base}/api/nothing-here`)).status).toBe(404);

    // Back (its node restarted): unavailable until the gateway has routes for it again, then served; never 404.
    const returning = pollStatuses(`${base}/api/products`, 1500);
    await broker.createService(schema);
    const statuses = await returning;
    expect(statuses.filter((status) => status !== 200 && status !== 503)).toEqual([]);
    expect(statuses.at(-1)).toBe(200);
  } finally {
    await broker.stop();
  }
});

it("refuses an order with 503, not 422, while the products service it prices from is gone", async () => {
  const port = await freePort();
  const broker = await startInProcessNode(
    testConfig(scope, { SERVICES: "api,auth,products,orders", PORT: String(port) }),
  );
  const base = `http://127.0.0.1:${port}`;
  try {
    const admin = await login(base);
    const product = await json<{ id: string }>(
      await apiRequest(base, admin, "POST", "/api/products", {
        sku: "GONE-1",
        name: "Gone",
        price: { amount: 100, currency: "EUR" },
        stock: 10,
      }),
    );
    await broker.destroyService(broker.getLocalService("products")!);
    const res = await apiRequest(base, admin, "POST", "/api/orders", orderBody(product.id, "GONE"));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
  } finally {
    await broker.stop();
  }
});
