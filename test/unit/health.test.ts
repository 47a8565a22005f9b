import { ServiceBroker, type ServiceSchema } from "moleculer";
import { loadConfig } from "../../lib/config";
import { timedCheck } from "../../lib/health";
import { brokerOptions } from "../../moleculer.config";
import HealthService from "../../services/health.service";

describe("timedCheck", () => {
  it("reports success, failure and silence as data", async () => {
    await expect(timedCheck("ok", async () => 1)).resolves.toMatchObject({ name: "ok", ok: true });
    await expect(timedCheck("fails", async () => Promise.reject(new Error("refused")))).resolves.toMatchObject({
      ok: false,
      error: "refused",
    });
    const silent = await timedCheck("silent", () => new Promise(() => undefined), 50);
    expect(silent).toMatchObject({ ok: false, error: "no answer within 50 ms" });
  });
});

describe("health service", () => {
  let databaseUp = true;
  const dependent: ServiceSchema = {
    name: "dependent",
    methods: {
      async readinessChecks() {
        return [
          { name: "database:dependent", ok: databaseUp, latencyMs: 1, ...(databaseUp ? {} : { error: "refused" }) },
        ];
      },
    },
  };
  const broker = new ServiceBroker({ logger: false, nodeID: "unit-node" });
  broker.createService(HealthService as unknown as ServiceSchema);
  broker.createService(dependent);

  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it("is live", async () => {
    await expect(broker.call("health.live")).resolves.toMatchObject({ status: "ok", nodeID: "unit-node" });
  });

  it("is ready when every local check passes", async () => {
    databaseUp = true;
    const report = await broker.call("health.ready");
    expect(report).toMatchObject({ nodeID: "unit-node", ready: true, services: ["health", "dependent"] });
  });

  it("answers 503 NOT_READY naming the failing dependency", async () => {
    databaseUp = false;
    await expect(broker.call("health.ready")).rejects.toMatchObject({
      code: 503,
      type: "NOT_READY",
      data: { failing: ["database:dependent"], nodeID: "unit-node" },
    });
  });

  it("sums the cluster as degraded while a node is not ready", async () => {
    databaseUp = false;
    await expect(broker.call("health.cluster")).resolves.toMatchObject({
      status: "degraded",
      nodes: [{ nodeID: "unit-node", ready: false, available: true }],
    });
    databaseUp = true;
    await expect(broker.call("health.cluster")).resolves.toMatchObject({ status: "ok" });
  });
});

describe("health probes under the broker's fault tolerance", () => {
  // The node's real circuit-breaker and retry settings (minRequestCount 20, threshold 0.5).
  const { circuitBreaker, retryPolicy } = brokerOptions(loadConfig({}));
  let checks = 0;
  let readyAfter = Infinity;
  const starting: ServiceSchema = {
    name: "starting",
    methods: {
      async readinessChecks() {
        checks += 1;
        const ok = checks > readyAfter;
        return [{ name: "starting", ok, latencyMs: 0, ...(ok ? {} : { error: "not yet" }) }];
      },
    },
  };
  const broker = new ServiceBroker({ logger: false, nodeID: "probed-node", circuitBreaker, retryPolicy });
  broker.createService(HealthService as unknown as ServiceSchema);
  broker.createService(starting);

  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it("answers NOT_READY to every probe while starting, once each, and ready at the first probe after", async () => {
    readyAfter = 40;
    for (let probe = 1; probe <= 40; probe += 1) {
      await expect(broker.call("health.ready")).rejects.toMatchObject({ code: 503, type: "NOT_READY" });
      // Not retried: each probe ran the checks once.
      expect(checks).toBe(probe);
    }
    await expect(broker.call("health.ready")).resolves.toMatchObject({ ready: true });
    await expect(broker.call("health.live")).resolves.toMatchObject({ status: "ok" });
  });
});
