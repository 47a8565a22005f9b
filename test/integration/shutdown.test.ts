/**
 * Graceful shutdown: a stopping node stops accepting HTTP but finishes the requests it has already accepted.
 */
import { Agent, get } from "node:http";
import type { ServiceSchema } from "moleculer";
import { freePort } from "../support/servers";
import { dropScopeDatabases, isolation, json, startInProcessNode, testConfig, waitFor } from "../support/nodes";

const scope = isolation();
afterAll(() => dropScopeDatabases(scope.prefix));

/** A request that takes a while, standing in for any slow action. */
const slowService: ServiceSchema = {
  name: "slow",
  actions: {
    wait: {
      rest: "GET /wait",
      permissions: "public",
      async handler() {
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

  const inFlight = fetch(`${base}/api/slow/wait`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const stopping = broker.stop();
  await new Promise((resolve) => setTimeout(resolve, 200));

  await expect(fetch(`${base}/health/live`)).rejects.toThrow();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await json<{ finished: boolean }>(res)).toEqual({ finished: true });
  await stopping;
});

it("closes the connections its finished requests leave open once it has stopped", async () => {
  const port = await freePort();
  const broker = await startInProcessNode(testConfig(scope, { SERVICES: "api", PORT: String(port) }), [slowService]);
  // A keep-alive client, as browsers and load balancers are: its connection outlives the request.
  const agent = new Agent({ keepAlive: true });
  const socketClosed = new Promise<void>((resolve, reject) => {
    const req = get(`http://127.0.0.1:${port}/api/slow/wait`, { agent }, (res) => res.resume());
    req.once("socket", (socket) => socket.once("close", () => resolve()));
    req.once("error", reject);
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
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

it("answers 503 naming the service, with Retry-After, for a route whose service has left", async () => {
  const port = await freePort();
  const broker = await startInProcessNode(testConfig(scope, { SERVICES: "api,products", PORT: String(port) }));
  const base = `http://127.0.0.1:${port}`;
  try {
    expect((await fetch(`${base}/api/products`)).status).toBe(200);
    await broker.destroyService(broker.getLocalService("products")!);
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
  } finally {
    await broker.stop();
  }
});
