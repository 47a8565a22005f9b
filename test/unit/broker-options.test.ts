import { Errors, ServiceBroker, type LoggerConfig, type TracerOptions } from "moleculer";
import { loadConfig } from "../../lib/config";
import { ConflictError, DependencyUnavailableError, NotReadyError } from "../../lib/errors";
import { LogShipper } from "../../lib/log-shipper";
import { SampledTraceExporter } from "../../lib/trace-sampling";
import { brokerOptions } from "../../moleculer.config";

describe("brokerOptions", () => {
  const options = brokerOptions(loadConfig({ RETRY_RETRIES: "2", REQUEST_TIMEOUT: "1500" }));

  it("switches on timeout, retry, circuit breaker, bulkhead, tracking, metrics and tracing", () => {
    expect(options.requestTimeout).toBe(1500);
    expect(options.retryPolicy).toMatchObject({ enabled: true, retries: 2 });
    expect(options.circuitBreaker).toMatchObject({ enabled: true, threshold: 0.5 });
    expect(options.bulkhead).toMatchObject({ enabled: true, concurrency: 50, maxQueueSize: 500 });
    expect(options.tracking).toMatchObject({ enabled: true });
    expect(options.metrics).toMatchObject({
      enabled: true,
      reporter: [{ type: "Prometheus", options: { port: 3030 } }],
    });
    // Development: spans to the log store (the web console shows them); the terminal's span trees only when asked.
    expect(options.tracing).toMatchObject({ enabled: true, exporter: [{ type: "Event" }] });
  });

  it("keeps a development terminal to requests, warnings and the broker's own lines unless LOG_LEVEL is set", () => {
    const terminalLevel = (env: Record<string, string>) =>
      (brokerOptions(loadConfig(env)).logger as LoggerConfig[])[0].options?.level as unknown;
    expect(terminalLevel({})).toEqual({ API: "info", BROKER: "info", "**": "warn" });
    expect(terminalLevel({ LOG_LEVEL: "info" })).toBe("info");
    expect(terminalLevel({ LOG_FORMAT: "json" })).toBe("info");
  });

  it("puts action parameters on spans with secrets redacted, and never the answer", () => {
    const tags = ((options.tracing as TracerOptions).tags as { action: (ctx: object, response?: unknown) => object })
      .action;
    const ctx = { params: { email: "a@b.example", password: "hunter2", nested: { refreshToken: "t" } } };
    expect(tags(ctx)).toEqual({
      params: { email: "a@b.example", password: "[redacted]", nested: { refreshToken: "[redacted]" } },
    });
    expect(tags(ctx, { accessToken: "secret" })).toEqual({});
  });

  it("exports spans to the log store with the event exporter", () => {
    const traced = brokerOptions(loadConfig({ TRACING_EXPORTER: "event" }));
    expect(traced.tracing).toMatchObject({ exporter: [{ type: "Event", options: { eventName: "$tracing.spans" } }] });
  });

  it("retries only retryable errors", () => {
    const check = options.retryPolicy!.check!;
    expect(check(new DependencyUnavailableError("database", "down"))).toBe(true);
    expect(check(new Errors.RequestTimeoutError({ action: "x", nodeID: "n" }))).toBe(true);
    expect(check(new ConflictError("taken", "DUPLICATE", {}))).toBe(false);
    expect(check(new Errors.ValidationError("bad"))).toBe(false);
  });

  it("lets only infrastructure faults count against an endpoint's circuit breaker", () => {
    const check = options.circuitBreaker!.check!;
    expect(check(new Errors.RequestTimeoutError({ action: "x", nodeID: "n" }))).toBe(true);
    expect(check(new Errors.RequestRejectedError({ action: "x", nodeID: "n" }))).toBe(true);
    expect(check(new DependencyUnavailableError("database", "down"))).toBe(true);
    // A bug some input provoked, a client's mistake, a node that says it is not ready: none says the endpoint is down.
    expect(check(new Error("plain"))).toBe(false);
    expect(check(new ConflictError("taken", "DUPLICATE", {}))).toBe(false);
    expect(check(new Errors.ValidationError("bad"))).toBe(false);
    expect(check(new NotReadyError(["database"], {}))).toBe(false);
  });

  it("has no Prometheus listener when METRICS_PORT is 0, and JSON logs in production", () => {
    const production = brokerOptions(
      loadConfig({
        NODE_ENV: "production",
        DATABASE_URL: "postgres://db/x",
        METRICS_PORT: "0",
        SERVICES: "api,products",
      }),
    );
    expect(production.metrics).toMatchObject({ enabled: true, reporter: [] });
    // Pino writes JSON (no pretty transport); the shipper sends the records to the log store.
    expect(production.logger).toEqual([
      { type: "Pino", options: { level: "info", pino: { options: { mixin: expect.any(Function) } } } },
      expect.any(LogShipper),
    ]);
    // No exporter in production unless one is configured, and then no spans are made.
    expect(production.tracing).toMatchObject({ enabled: false, exporter: [] });
  });

  it("samples a share of traces when the rate is below 1, and exports every span at rate 1", () => {
    const sampled = brokerOptions(loadConfig({ TRACING_EXPORTER: "event", TRACING_SAMPLE_RATE: "0.25" }));
    expect(sampled.tracing).toMatchObject({ enabled: true, exporter: [expect.any(SampledTraceExporter)] });
    const all = brokerOptions(loadConfig({ TRACING_EXPORTER: "event", TRACING_SAMPLE_RATE: "1" }));
    expect(all.tracing).toMatchObject({ exporter: [{ type: "Event" }] });
    expect(() => loadConfig({ TRACING_SAMPLE_RATE: "1.5" })).toThrow(/TRACING_SAMPLE_RATE/);
  });

  it("replaces Moleculer's metrics middleware by one an action can switch off, keeping Moleculer's order", () => {
    expect(options.internalMiddlewares).toBe(false);
    const names = (options.middlewares ?? []).map((mw) => (typeof mw === "function" ? "Metrics" : mw));
    expect(names.filter((name) => typeof name === "string")).toEqual(ServiceBroker.INTERNAL_MIDDLEWARES);
  });
});
