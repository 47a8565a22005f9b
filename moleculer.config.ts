/**
 * Broker options for every node, built from the typed configuration (`lib/config.ts`). Fault tolerance is on for
 * every call with these defaults; actions that need other limits set `timeout`, `retryPolicy`, `circuitBreaker` or
 * `bulkhead` in their own schema.
 */
import path from "node:path";
import { Middleware as ChannelsMiddleware } from "@moleculer/channels";
import {
  ServiceBroker,
  TracerExporters,
  Validators,
  type BrokerOptions,
  type Context,
  type Errors,
  type Middleware,
  type TracerOptions,
} from "moleculer";
import { redact } from "./lib/audit";
import type { Config } from "./lib/config";
import { TolerantJsonSerializer } from "./lib/delivery";
import { InProcessChannelsAdapter } from "./lib/in-process-channels";
import { LogShipper } from "./lib/log-shipper";
import { PARAMS_VALIDATOR_OPTIONS } from "./lib/params";
import { requestLogFields } from "./lib/request-context";
import { SPANS_EVENT } from "./lib/spans";
import { SampledTraceExporter } from "./lib/trace-sampling";
import { ActionMetricsMiddleware } from "./middlewares/action-metrics.middleware";
import { AuditMiddleware } from "./middlewares/audit.middleware";
import { BusIdentityMiddleware } from "./middlewares/bus-identity.middleware";
import { ChannelsReadyMiddleware } from "./middlewares/channels-ready.middleware";
import { DatabaseErrorsMiddleware } from "./middlewares/database-errors.middleware";
import { PermissionsMiddleware } from "./middlewares/permissions.middleware";
import { RequestContextMiddleware } from "./middlewares/request-context.middleware";
import { StopIntakeMiddleware } from "./middlewares/stop-intake.middleware";

type ErrorLike = Errors.MoleculerError | Error;

/**
 * Only faults flagged retryable (timeouts, unreachable nodes, `MoleculerRetryableError`s) are retried; client errors
 * (4xx) never are, so a client's own mistake is answered once.
 */
const isRetryable = (err: ErrorLike): boolean => Boolean((err as Errors.MoleculerError).retryable);

/**
 * Only infrastructure faults count against an endpoint's circuit breaker: timeouts, unreachable nodes and unavailable
 * dependencies (retryable 5xx). A client's mistake (4xx), a 500 some input provoked, and a probe's "not ready" say
 * nothing about whether the endpoint can serve others; counting them let any client open the breaker for everyone.
 */
const isEndpointFault = (err: ErrorLike): boolean => {
  const { code, retryable } = err as Errors.MoleculerError;
  return Boolean(retryable) && typeof code === "number" && code >= 500;
};

function logger(config: Config): BrokerOptions["logger"] {
  const pretty = {
    transport: {
      target: "pino-pretty",
      options: {
        colorize: true,
        ignore: "pid,hostname,ns,nodeID,mod,svc,requestId",
        messageFormat: "{nodeID} {mod}: {msg} {if requestId}(req {requestId}){end}",
      },
    },
  };
  const pino = { ...(config.log.format === "pretty" ? pretty : {}), mixin: requestLogFields };
  // A quiet terminal: the gateway's requests and the broker's own lines ("Ready in …", shutdown) at info, every
  // other module's warnings; their info lines still reach the log store through the shipper.
  const level = config.log.quietTerminal ? { API: "info", BROKER: "info", "**": "warn" } : config.log.level;
  const local = { type: "Pino", options: { level, pino: { options: pino } } };
  // Every node also ships its records to the log store (the logs service), unless turned off.
  if (config.log.shipLevel === "off") return local;
  return [local, new LogShipper({ level: config.log.shipLevel })] as BrokerOptions["logger"];
}

/** The exporters `TRACING_EXPORTER` names, behind the sampler when only a share of traces is kept. */
function tracingExporters(config: Config): TracerOptions["exporter"] {
  const { sampleRate, slowMs } = config.tracing;
  const exporters = namedExporters(config);
  if (sampleRate >= 1 || exporters.length === 0) return exporters;
  const sampler = new SampledTraceExporter({
    rate: sampleRate,
    slowMs,
    exporters: exporters.map(TracerExporters.resolve),
  });
  // Moleculer takes exporter instances too (it resolves each entry); its typings list only the named ones.
  return [sampler as unknown as "Event"];
}

function namedExporters(config: Config) {
  const { exporters, endpoint } = config.tracing;
  return exporters.map((name) => {
    switch (name) {
      case "console":
        return { type: "Console" as const, options: { width: 100, colors: config.log.format === "pretty" } };
      case "event":
        // Finished spans, every 5 s, to one instance of the logs service (its span store).
        return { type: "Event" as const, options: { eventName: SPANS_EVENT, sendStartSpan: false, interval: 5 } };
      case "zipkin":
        return { type: "Zipkin" as const, options: { baseURL: endpoint ?? undefined } };
    }
  });
}

/** Spans carry what an action or event was called with, secrets redacted as in the audit trail; never the answer. */
function redactedTags(ctx: Context, response?: unknown): Record<string, unknown> {
  return response === undefined ? { params: redact(ctx.params) } : {};
}

/** This role's NATS credentials and TLS, for the transporter and the channels' connection alike (nats.js options). */
function natsConnection(config: Config) {
  const { user, password, tlsCa } = config.nats;
  return {
    ...(user && password ? { user, pass: password } : {}),
    ...(tlsCa ? { tls: { caFile: tlsCa } } : {}),
  };
}

function transporter(config: Config): BrokerOptions["transporter"] {
  if (!config.transporter?.startsWith("nats://")) {
    // A connection string such as redis://host, which Moleculer resolves; its typings list only type names.
    return config.transporter as BrokerOptions["transporter"];
  }
  // The servers, not the URL: given a URL, Moleculer's NATS transporter overwrites `user` and `pass` with the URL's
  // (empty) ones.
  const servers = config.transporter.split(",").map((url) => new URL(url.trim()).host);
  return { type: "NATS", options: { servers, ...natsConnection(config) } };
}

/**
 * Durable channels for messages that must not be lost: NATS JetStream in a cluster, in memory (Moleculer events) in
 * the single-process default, where the outbox is what keeps unsent events across restarts (a publish there returns
 * once the local consumers have processed the message: lib/in-process-channels.ts). Streams and consumer
 * groups are prefixed with the namespace; a new consumer group starts from the first message its stream holds.
 * Retries, backoff and dead-lettering are ours (mixins/consumer.mixin.ts), so the adapter's own are off: it would
 * redeliver at once, drop the error and lose the message if moving it failed.
 */
function channels(config: Config) {
  const adapter = config.transporter?.startsWith("nats://")
    ? {
        type: "NATS",
        options: {
          serializer: new TolerantJsonSerializer(),
          nats: {
            url: config.transporter,
            // Reconnect for as long as it takes: the outbox holds what could not be published meanwhile.
            connectionOptions: { maxReconnectAttempts: -1, reconnectTimeWait: 1000, ...natsConnection(config) },
            // Copies of each stream across the JetStream cluster: 3 on the k8s NATS cluster, so a lost node loses nothing.
            streamConfig: { num_replicas: config.jetstreamReplicas },
            consumerOptions: {
              config: { deliver_policy: "all", ack_wait: config.delivery.ackWaitMs * 1_000_000 },
            },
          },
          maxInFlight: 10,
          deadLettering: { enabled: false },
        },
      }
    : new InProcessChannelsAdapter({ serializer: new TolerantJsonSerializer() });
  // The package's typings demand every adapter's options at once (an intersection) and type the result loosely.
  const options = { adapter } as unknown as Parameters<typeof ChannelsMiddleware>[0];
  return ChannelsMiddleware(options) as unknown as Middleware;
}

export function brokerOptions(config: Config): BrokerOptions {
  return {
    namespace: config.namespace,
    nodeID: config.nodeID,
    logger: logger(config),
    transporter: transporter(config),
    serializer: "JSON",

    requestTimeout: config.requestTimeout,
    retryPolicy: { enabled: true, retries: config.retries, delay: 100, maxDelay: 2000, factor: 2, check: isRetryable },
    circuitBreaker: {
      enabled: true,
      threshold: config.circuitBreakerThreshold,
      minRequestCount: 20,
      windowTime: 60,
      halfOpenTime: 10_000,
      check: isEndpointFault,
    },
    bulkhead: { enabled: true, ...config.bulkhead },
    // Tracks in-flight contexts so a stopping node finishes them (bounded) before its services stop.
    tracking: { enabled: true, shutdownTimeout: config.shutdownTimeout },
    // The start script owns SIGINT/SIGTERM: it stops the broker, then the embedded database, then exits.
    skipProcessEventRegistration: true,
    heartbeatInterval: 5,
    heartbeatTimeout: 15,

    registry: { strategy: "RoundRobin", preferLocal: true },
    // Nulls refused unless a rule allows them, numbers bounded (lib/params.ts).
    validator: new Validators.Fastest(PARAMS_VALIDATOR_OPTIONS),

    middlewares: [
      DatabaseErrorsMiddleware(),
      StopIntakeMiddleware(),
      BusIdentityMiddleware(config),
      RequestContextMiddleware(),
      PermissionsMiddleware(),
      AuditMiddleware({ spoolDir: path.join(config.dataDir, "audit-spool", config.namespace) }),
      channels(config),
      ChannelsReadyMiddleware(),
      // Moleculer's own middlewares, in its order, with request metrics that an action can switch off.
      ...ServiceBroker.INTERNAL_MIDDLEWARES.map((name) =>
        name === "Metrics" ? (ActionMetricsMiddleware as unknown as Middleware) : name,
      ),
    ],
    internalMiddlewares: false,

    metrics: {
      enabled: true,
      reporter: config.metricsPort
        ? [{ type: "Prometheus", options: { port: config.metricsPort, path: "/metrics" } }]
        : [],
    },
    // No exporter, no spans: they would be made and dropped on every call.
    tracing: {
      enabled: config.tracing.exporters.length > 0,
      exporter: tracingExporters(config),
      events: true,
      stackTrace: !config.isProduction,
      tags: { action: redactedTags, event: redactedTags },
    },
  };
}
