/**
 * Graceful shutdown: a stopping node stops accepting HTTP but finishes the requests it has already accepted.
 */
import type { ServiceSchema } from "moleculer";
import { freePort } from "../support/servers";
import { dropScopeDatabases, isolation, json, startInProcessNode, testConfig } from "../support/nodes";

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
