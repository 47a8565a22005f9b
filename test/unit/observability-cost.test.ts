/**
 * What observability costs per request: the sampled trace exporter keeps a share of traces and every failed or slow
 * one, and request metrics skip actions that declare `metrics: false`. Both run in a real in-process broker with
 * Moleculer's own tracer and metrics registry.
 */
import { randomUUID } from "node:crypto";
import { ServiceBroker, TracerExporters, type Context, type Middleware, type Span } from "moleculer";
import { SampledTraceExporter, traceFraction } from "../../lib/trace-sampling";
import { ActionMetricsMiddleware } from "../../middlewares/action-metrics.middleware";

class CollectingExporter extends TracerExporters.Base {
  readonly finished: Span[] = [];
  readonly started: Span[] = [];
  override spanStarted(span: Span) {
    this.started.push(span);
  }
  override spanFinished(span: Span) {
    this.finished.push(span);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the trace id's share", () => {
  it("is the same for the same id and spreads ids evenly", () => {
    const id = randomUUID();
    expect(traceFraction(id)).toBe(traceFraction(id));
    const ids = Array.from({ length: 20_000 }, () => randomUUID());
    const share = ids.filter((traceId) => traceFraction(traceId) < 0.25).length / ids.length;
    expect(share).toBeGreaterThan(0.23);
    expect(share).toBeLessThan(0.27);
  });
});

describe("sampled tracing", () => {
  const collector = new CollectingExporter({});
  let broker: ServiceBroker;

  beforeAll(async () => {
    broker = new ServiceBroker({
      logger: false,
      tracing: {
        enabled: true,
        exporter: [new SampledTraceExporter({ rate: 0, slowMs: 50, exporters: [collector] }) as unknown as "Event"],
      },
    });
    broker.createService({
      name: "work",
      actions: {
        leaf: () => "leaf",
        fast: (ctx: Context) => ctx.call("work.leaf"),
        async fails(ctx: Context) {
          await ctx.call("work.leaf");
          throw new Error("failed on purpose");
        },
        async slow(ctx: Context) {
          await ctx.call("work.leaf");
          await sleep(80);
          return "slow";
        },
      },
    });
    await broker.start();
  });

  afterAll(() => broker.stop());

  const traceOf = (requestID: string) => collector.finished.filter((span) => span.traceID === requestID);

  it("drops a fast, successful trace outside the share", async () => {
    const requestID = randomUUID();
    await broker.call("work.fast", {}, { requestID });
    expect(traceOf(requestID)).toEqual([]);
  });

  it("keeps a failed trace whole, the spans that finished before the failure included", async () => {
    const requestID = randomUUID();
    await expect(broker.call("work.fails", {}, { requestID })).rejects.toThrow("failed on purpose");
    expect(traceOf(requestID).map((span) => span.name)).toEqual(["action 'work.leaf'", "action 'work.fails'"]);
    // Each exported span was announced as started first, for exporters that draw trees.
    expect(collector.started.filter((span) => span.traceID === requestID)).toHaveLength(2);
  });

  it("keeps a slow trace whole", async () => {
    const requestID = randomUUID();
    await broker.call("work.slow", {}, { requestID });
    expect(traceOf(requestID).map((span) => span.name)).toEqual(["action 'work.leaf'", "action 'work.slow'"]);
  });

  it("holds nothing once a trace's spans have finished", async () => {
    for (let i = 0; i < 20; i++) await broker.call("work.fast", {}, { requestID: randomUUID() });
    const sampler = broker.tracer.exporter![0] as unknown as { held: Map<string, unknown> };
    expect(sampler.held.size).toBe(0);
  });

  it("exports every span of a trace in the share", async () => {
    const inShare = new CollectingExporter({});
    const everything = new ServiceBroker({
      logger: false,
      tracing: {
        enabled: true,
        exporter: [new SampledTraceExporter({ rate: 0.5, slowMs: 10_000, exporters: [inShare] }) as unknown as "Event"],
      },
    });
    everything.createService({
      name: "work",
      actions: { leaf: () => "leaf", fast: (ctx: Context) => ctx.call("work.leaf") },
    });
    await everything.start();
    const ids = Array.from({ length: 40 }, () => randomUUID());
    for (const requestID of ids) await everything.call("work.fast", {}, { requestID });
    await everything.stop();
    const exported = new Set(inShare.finished.map((span) => span.traceID));
    expect([...exported].sort()).toEqual(ids.filter((id) => traceFraction(id) < 0.5).sort());
    expect(inShare.finished).toHaveLength(exported.size * 2);
  });
});

describe("request metrics", () => {
  it("counts every action except one that declares metrics: false", async () => {
    const broker = new ServiceBroker({
      logger: false,
      metrics: { enabled: true },
      internalMiddlewares: false,
      middlewares: ServiceBroker.INTERNAL_MIDDLEWARES.map((name) =>
        name === "Metrics" ? (ActionMetricsMiddleware as unknown as Middleware) : name,
      ),
    });
    broker.createService({
      name: "entry",
      actions: {
        route: { metrics: false, handler: (ctx: Context) => ctx.call("entry.target") },
        target: () => "done",
      },
    });
    await broker.start();
    await broker.call("entry.route");
    await broker.call("entry.route");
    const total = broker.metrics.getMetric("moleculer.request.total")!.snapshot() as unknown as {
      labels: { action: string };
      value: number;
    }[];
    await broker.stop();
    expect(total.map(({ labels, value }) => [labels.action, value])).toEqual([["entry.target", 2]]);
  });
});
