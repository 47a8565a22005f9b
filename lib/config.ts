/**
 * The one place that reads the environment. Every key the platform understands is listed in `CONFIG_KEYS` with its
 * default and meaning (the README's configuration table is this list), parsed once into a typed, frozen `Config`.
 */
import { hostname } from "node:os";
import path from "node:path";
import { publicKeyOfSeed } from "./bus-claims";
import { parseTrustedProxies } from "./client-address";
import type { DeliveryPolicy } from "./delivery";

export const SERVICE_NAMES = [
  "api",
  "auth",
  "products",
  "orders",
  "audit",
  "logs",
  "exec",
  "dlq",
  "payments",
  "shipping",
  "sagas",
  "alerts",
] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Whether a service keeps a database of its own: all but the gateway, so a gateway-only node needs no database URL. */
export const hasDatabase = (name: ServiceName): boolean => name !== "api";

export type NodeEnv = "development" | "production" | "test";
export type LogFormat = "pretty" | "json";
export type TracingExporterName = "console" | "event" | "zipkin";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

export interface KeyDoc {
  key: string;
  default: string;
  description: string;
}

/** Every environment key, its default and what it does. Kept in the order the README shows them. */
/** The first admin's e-mail when `ADMIN_EMAIL` is unset. */
export const DEFAULT_ADMIN_EMAIL = "admin@aicunet.local";

export const CONFIG_KEYS: readonly KeyDoc[] = [
  { key: "NODE_ENV", default: "development", description: "`development`, `production` or `test`." },
  {
    key: "PORT",
    default: "3000",
    description:
      "HTTP port: the gateway (`api`: REST API, health, UI) on nodes that host it; `/health/live` and `/health/ready` on the others.",
  },
  {
    key: "METRICS_PORT",
    default: "3030",
    description: "Port of the Prometheus `/metrics` endpoint; `0` turns it off.",
  },
  {
    key: "TRANSPORTER",
    default: "(none)",
    description: "Moleculer transporter, e.g. `nats://127.0.0.1:4222`. Unset: a single process with no transporter.",
  },
  {
    key: "NATS_USER",
    default: "(none; required in production)",
    description:
      "This role's NATS user (its publish/subscribe allow-lists are in the NATS server's authorization config); used by the transporter and the durable channels. With `NATS_PASSWORD`.",
  },
  { key: "NATS_PASSWORD", default: "(none; required in production)", description: "Password of `NATS_USER`." },
  {
    key: "NATS_TLS_CA",
    default: "(none; required in production)",
    description:
      "PEM file of the CA that signed the NATS server's certificate; set, the connection to NATS is TLS and the server is verified.",
  },
  {
    key: "BUS_ROLE",
    default: "dev",
    description:
      "Name of this node's role (`gateway`, `identity`, ...): which public key in `BUS_TRUSTED_KEYS` verifies the caller claims it signs. The `gateway` role may only assert users, clients and a few system reads (docs/security.md).",
  },
  {
    key: "BUS_SIGNING_KEY",
    default: "(required in production with a transporter)",
    description:
      "This role's Ed25519 seed (32 bytes, base64url) that signs the caller identity of every call and event it sends over the bus. Development without it: generated once into `DATA_DIR/secrets/` and trusted as role `dev`.",
  },
  {
    key: "BUS_TRUSTED_KEYS",
    default: "(required in production with a transporter)",
    description:
      "Comma list of `role:publicKey` (base64url Ed25519) whose caller claims this node accepts; a claim from any other key is dropped. `npm run bus-keys` makes a set.",
  },
  {
    key: "SERVICES",
    default: "(all)",
    description: `Comma list of the services this process hosts: ${SERVICE_NAMES.join(", ")}.`,
  },
  {
    key: "DATABASE_URL",
    default: "(embedded)",
    description:
      "PostgreSQL server on which each service gets its own database, named after the service and created if missing. Unset: an embedded PostgreSQL under `DATA_DIR` (development only).",
  },
  {
    key: "<SERVICE>_DATABASE_URL",
    default: "(none)",
    description:
      "Overrides `DATABASE_URL` for one service, e.g. `ORDERS_DATABASE_URL`; used as given (database included).",
  },
  {
    key: "DATABASE_REPLICA_URL",
    default: "(none)",
    description:
      "A streaming replica of the `DATABASE_URL` server; services that read from replicas (orders) send their list and get queries there. Unset: reads go to the primary.",
  },
  {
    key: "DATABASE_NAME_PREFIX",
    default: "(empty)",
    description: "Prefix for the per-service database names, so several environments can share one server.",
  },
  { key: "DATABASE_POOL_MAX", default: "10", description: "Connection pool size per service database." },
  {
    key: "LOG_LEVEL",
    default: "info",
    description:
      "`fatal`, `error`, `warn`, `info`, `debug` or `trace`. Unset with the `pretty` format, the terminal shows the start banner, the gateway's requests and every module's warnings; set it to see every module's lines at that level.",
  },
  {
    key: "LOG_FORMAT",
    default: "pretty (json in production)",
    description: "`pretty` for people, `json` for log shippers.",
  },
  { key: "NODE_ID", default: "<hostname>-<pid>", description: "Moleculer node id; unique in the cluster." },
  {
    key: "NAMESPACE",
    default: "aicunet",
    description: "Moleculer namespace; nodes only see nodes of their namespace.",
  },
  {
    key: "REQUEST_TIMEOUT",
    default: "10000",
    description: "Default action call timeout in ms (per-action overrides).",
  },
  { key: "RETRY_RETRIES", default: "3", description: "Retries of a call that failed with a retryable error." },
  {
    key: "CIRCUIT_BREAKER_THRESHOLD",
    default: "0.5",
    description: "Failure ratio in the window that opens an endpoint's circuit breaker.",
  },
  { key: "BULKHEAD_CONCURRENCY", default: "50", description: "Concurrent calls per action on a node before queueing." },
  { key: "BULKHEAD_MAX_QUEUE", default: "500", description: "Queued calls per action before `QueueIsFullError`." },
  {
    key: "TRACING_EXPORTER",
    default: "event (none in production and test)",
    description:
      "Comma list of `console`, `event` (to the log store's span store, `GET /api/logs/traces/:traceId`), `zipkin` (also what Jaeger and OpenTelemetry collectors accept), or `none` (no spans are made at all; request ids are still propagated).",
  },
  {
    key: "TRACING_SAMPLE_RATE",
    default: "1 (0.1 in production)",
    description:
      "Share of traces exported whole, from 0 to 1, chosen by the trace id so every node keeps the same ones. Traces outside it are still exported where a span failed or was slow (`TRACING_SLOW_MS`).",
  },
  {
    key: "TRACING_SLOW_MS",
    default: "1000",
    description: "A span this long or longer, in ms, keeps its node's part of a trace outside the sampled share.",
  },
  {
    key: "TRACING_ENDPOINT",
    default: "(none)",
    description: "Collector base URL for the `zipkin` exporter, e.g. `http://jaeger:9411`.",
  },
  { key: "SHUTDOWN_TIMEOUT", default: "10000", description: "How long shutdown waits for in-flight requests, in ms." },
  {
    key: "DATA_DIR",
    default: ".data",
    description:
      "Where the embedded PostgreSQL, generated development secrets and the audit spool (records waiting for NATS, `audit-spool/<NAMESPACE>/`) live.",
  },
  { key: "EMBEDDED_PG_PORT", default: "54320", description: "Port of the embedded PostgreSQL (loopback only)." },
  {
    key: "AUTH_KEY_SECRET",
    default: "(required in production)",
    description:
      "Encrypts the JWT signing keys at rest in the auth database. Development without it: generated once into `DATA_DIR/secrets/`.",
  },
  {
    key: "AUDIT_ANCHOR_KEY",
    default: "(required in production)",
    description:
      "Signs every audit record's hash (HMAC-SHA256), so a rewrite by whoever can write the audit database shows in `GET /api/audit/verify`; the database never sees it. 32+ characters, the same on every node that hosts audit. Development without it: generated once into `DATA_DIR/secrets/`.",
  },
  { key: "AUTH_ISSUER", default: "aicunet", description: "`iss` of the access tokens." },
  { key: "AUTH_AUDIENCE", default: "aicunet-api", description: "`aud` of the access tokens." },
  { key: "ACCESS_TOKEN_TTL", default: "900", description: "Access token lifetime in seconds." },
  {
    key: "TOKEN_CACHE_SIZE",
    default: "10000",
    description:
      "Access tokens whose signature a gateway keeps as verified (until each one's expiry; revocation and roles are still checked on every request). 0 verifies every request.",
  },
  { key: "REFRESH_TOKEN_TTL", default: "2592000", description: "Refresh token lifetime in seconds (30 days)." },
  { key: "AUTH_SELF_REGISTRATION", default: "true", description: "Whether `POST /api/auth/register` is open." },
  {
    key: "ADMIN_EMAIL",
    default: DEFAULT_ADMIN_EMAIL,
    description: "First admin, created on first start when no admin exists.",
  },
  {
    key: "ADMIN_PASSWORD",
    default: "(generated in development)",
    description:
      "Password of the first admin. Required in production when no admin exists; in development a random one is printed once on the terminal (never logged), and must be changed at the first sign-in.",
  },
  {
    key: "PASSWORD_HASH_COST",
    default: "17",
    description: "scrypt cost as log2(N), with r=8, p=1 (OWASP's minimum is 17).",
  },
  {
    key: "REDIS_URL",
    default: "(none)",
    description:
      "Redis for the gateway's rate-limit counters, shared by all gateway replicas. Unset: counters in memory.",
  },
  { key: "RATE_LIMIT_IP", default: "600", description: "API requests per minute per client IP." },
  { key: "RATE_LIMIT_USER", default: "1200", description: "API requests per minute per authenticated user or client." },
  {
    key: "RATE_LIMIT_AUTH",
    default: "10",
    description:
      "Refresh, change-password, register and token requests per minute per client IP and endpoint; failed sign-ins per minute per client IP.",
  },
  {
    key: "RATE_LIMIT_LOGIN_ACCOUNT",
    default: "10",
    description:
      "Failed sign-ins per account in 15 minutes, from any address, before that account's sign-ins answer 429 until the window ends.",
  },
  {
    key: "RATE_LIMIT_PROBE",
    default: "600",
    description:
      "Requests per minute per client IP to `/health/*` and `/.well-known/jwks.json`, counted in each gateway's memory.",
  },
  {
    key: "JETSTREAM_REPLICAS",
    default: "1",
    description:
      "Copies of each JetStream stream the platform creates (1 on a single nats-server; 3 on a three-node JetStream cluster, so a lost node loses no message).",
  },
  {
    key: "TRUSTED_PROXIES",
    default: "(none)",
    description:
      "Comma list of addresses or CIDR ranges of the load balancers in front of the gateway: their `X-Forwarded-For` names the client for the per-IP rate limits and the access log. Unset: the socket's address, the header ignored.",
  },
  { key: "CORS_ORIGINS", default: "(none)", description: "Comma list of origins allowed by CORS, or `*`." },
  {
    key: "DELIVERY_MAX_ATTEMPTS",
    default: "5",
    description:
      "Deliveries of a durable message to one consumer group before it goes to the dead-letter queue (retryable errors; a validation error goes at once).",
  },
  {
    key: "DELIVERY_RETRY_DELAY",
    default: "1000",
    description: "Delay before a failed message is delivered again, in ms; doubles with each attempt, up to 60 s.",
  },
  {
    key: "DELIVERY_ACK_WAIT",
    default: "10000",
    description:
      "How long JetStream waits for a consumer to acknowledge a message before it redelivers it (a crashed consumer), in ms.",
  },
  {
    key: "OUTBOX_POLL_INTERVAL",
    default: "10000",
    description:
      "Longest pause between two rounds of a service's outbox relay, in ms. A commit that wrote outbox rows wakes the relays at once (LISTEN/NOTIFY); the poll covers a notification missed while the listening connection was down.",
  },
  {
    key: "SAGA_STEP_TIMEOUT",
    default: "5000",
    description: "How long a saga step (stock, payment, shipping) may take, in ms.",
  },
  {
    key: "SAGA_STEP_ATTEMPTS",
    default: "3",
    description: "Tries of a saga step that fails transiently (timeout, 5xx) before the saga compensates.",
  },
  {
    key: "SAGA_RETRY_DELAY",
    default: "500",
    description: "Delay before a saga step is tried again, in ms; doubles with each attempt, up to 30 s.",
  },
  {
    key: "SAGA_COMPENSATION_ATTEMPTS",
    default: "10",
    description:
      "Tries of a compensation (release stock, refund, cancel shipment) before the saga is parked as FAILED for an operator.",
  },
  {
    key: "SAGA_WAIT_UNAVAILABLE",
    default: "10000",
    description:
      "How long a saga waits before calling a participant again that is unavailable (no node, circuit breaker open), in ms.",
  },
  {
    key: "SAGA_MAX_WAITS",
    default: "30",
    description:
      "Waits for an unavailable participant before the attempt counts as failed (so a breaker that keeps opening ends in compensation).",
  },
  {
    key: "SAGA_LEASE",
    default: "10000",
    description:
      "How long a saga engine owns the sagas it runs without renewing its lease (it renews every third of it), in ms. A node that dies leaves its sagas to the others this long after its last renewal. Keep it well above the engine's pauses (GC, a busy event loop).",
  },
  {
    key: "SAGA_SWEEP_INTERVAL",
    default: "1000",
    description:
      "How often the saga engine looks for sagas no engine owns (a dead node's expired lease, a stopped node's released one) and takes them over, in ms.",
  },
  {
    key: "SAGA_CONCURRENCY",
    default: "64",
    description:
      "Saga actions one engine node calls at once; the others wait their turn (in memory, under the node's lease), so a burst of sagas does not flood the participants' bulkheads.",
  },
  {
    key: "SAGA_STALL_AFTER",
    default: "60000",
    description:
      "How long an order may stay PENDING, its saga not having moved it, before the orders service sends its `order.created` again (a message lost after it was acknowledged; the saga engine's inbox drops it if the saga did start), in ms.",
  },
  {
    key: "LOG_SHIP_LEVEL",
    default: "info",
    description:
      "Records at this level and above are shipped to the `logs` service (the log store); `off` ships nothing.",
  },
  { key: "LOG_RETENTION_DAYS", default: "7", description: "How long the log store keeps records, in days." },
  {
    key: "ALERT_INTERVAL",
    default: "15000",
    description: "How often the `alerts` service evaluates its rules, in ms.",
  },
  {
    key: "ALERT_COOLDOWN",
    default: "600000",
    description:
      "After an alert was sent, the same rule and key does not notify again for this long (a flapping condition), in ms.",
  },
  {
    key: "ALERT_ERROR_LOGS",
    default: "10",
    description: "Error-level log records within `ALERT_ERROR_WINDOW` that fire the `error-rate` alert.",
  },
  { key: "ALERT_ERROR_WINDOW", default: "300000", description: "The window of the `error-rate` alert, in ms." },
  {
    key: "ALERT_DLQ_DEPTH",
    default: "1",
    description: "Pending dead letters on one channel that fire the `dlq-depth` alert.",
  },
  {
    key: "ALERT_SMTP_URL",
    default: "(none)",
    description: "SMTP server for alert emails, e.g. `smtp://user:pass@mail.example.com:587`. Unset: no email.",
  },
  { key: "ALERT_EMAIL_FROM", default: "alerts@aicunet.local", description: "Sender of alert emails." },
  { key: "ALERT_EMAIL_TO", default: "(none)", description: "Comma list of alert email recipients." },
  {
    key: "ALERT_WEBHOOK_URL",
    default: "(none)",
    description: "Slack-compatible incoming webhook for alerts (a JSON `{ text }` POST). Unset: no webhook.",
  },
  {
    key: "PAYMENTS_SLOW_MS",
    default: "15000",
    description: "How long the simulated provider takes for `pm_card_slow` (longer than the step timeout), in ms.",
  },
  {
    key: "ORDERS_MAX_BACKLOG",
    default: "1000",
    description:
      "Orders not yet final (PENDING, PAID or SHIPPED: their saga has not ended) above which `POST /api/orders` is refused with 503 `OVERLOADED` and `Retry-After`, before anything is written. Measured by one indexed count, at most every 250 ms.",
  },
  {
    key: "PAYMENTS_FLAKY_FAILURES",
    default: "2",
    description: "How many calls for one charge fail transiently with `pm_card_flaky` before it succeeds.",
  },
  {
    key: "FAILPOINTS",
    default: "(none)",
    description:
      "Fault tests only: comma list of crash points (`outbox.published:<channel>`, `consumer.committing:<channel>`, `saga.committed:<step>`) where the process kills itself, and of drop points (`outbox.drop:<channel>`: the first message of that channel is marked sent and never published) (lib/failpoints.ts). Refused in production.",
  },
];

export interface Config {
  env: NodeEnv;
  isProduction: boolean;
  port: number;
  metricsPort: number;
  transporter: string | null;
  /** NATS credentials and TLS, for the transporter and the durable channels alike. */
  nats: { user: string | null; password: string | null; tlsCa: string | null };
  /** Caller claims on the bus (lib/bus-claims.ts); a null key in development is generated at start. */
  bus: { role: string; signingKey: string | null; trustedKeys: Record<string, string> };
  services: ServiceName[];
  database: {
    /** Server URL shared by the services; null means the embedded PostgreSQL is used. */
    url: string | null;
    /** Per-service URLs from `<SERVICE>_DATABASE_URL`. */
    overrides: Partial<Record<ServiceName, string>>;
    /** Replica server URL; a service's replica database has the same name as on the primary. */
    replicaUrl: string | null;
    namePrefix: string;
    poolMax: number;
  };
  log: {
    level: LogLevel;
    format: LogFormat;
    /** Pretty format without an explicit LOG_LEVEL: the terminal keeps only requests, warnings and the banner. */
    quietTerminal: boolean;
    shipLevel: LogLevel | "off";
    retentionDays: number;
  };
  nodeID: string;
  namespace: string;
  requestTimeout: number;
  retries: number;
  circuitBreakerThreshold: number;
  bulkhead: { concurrency: number; maxQueueSize: number };
  tracing: { exporters: TracingExporterName[]; endpoint: string | null; sampleRate: number; slowMs: number };
  shutdownTimeout: number;
  dataDir: string;
  embeddedPostgresPort: number;
  audit: {
    /** The key audit records are anchored with (lib/audit.ts); null in development means a generated one. */
    anchorKey: string | null;
  };
  auth: {
    keySecret: string | null;
    issuer: string;
    audience: string;
    accessTokenTtl: number;
    tokenCacheSize: number;
    refreshTokenTtl: number;
    selfRegistration: boolean;
    adminEmail: string | null;
    adminPassword: string | null;
    passwordHashCost: number;
  };
  redisUrl: string | null;
  rateLimits: { perIp: number; perUser: number; auth: number; loginAccount: number; probe: number };
  corsOrigins: string[];
  trustedProxies: string[];
  jetstreamReplicas: number;
  delivery: DeliveryPolicy & { ackWaitMs: number; outboxPollMs: number };
  saga: {
    stepTimeoutMs: number;
    stepAttempts: number;
    retryDelayMs: number;
    compensationAttempts: number;
    waitUnavailableMs: number;
    maxWaits: number;
    /** An engine's hold on the sagas it runs, renewed every third of it. */
    leaseMs: number;
    sweepIntervalMs: number;
    /** Actions one engine calls at once. */
    concurrency: number;
    /** An order PENDING this long has its `order.created` sent again. */
    stallAfterMs: number;
  };
  payments: { slowMs: number; flakyFailures: number };
  /** Orders not yet final above which new orders are refused (backpressure at intake). */
  orders: { maxBacklog: number };
  /** Crash and drop points armed for a fault test (lib/failpoints.ts); always empty in production. */
  failpoints: string[];
  alerts: {
    intervalMs: number;
    cooldownMs: number;
    errorLogs: number;
    errorWindowMs: number;
    dlqDepth: number;
    smtpUrl: string | null;
    emailFrom: string;
    emailTo: string[];
    webhookUrl: string | null;
  };
}

/** Thrown when the environment cannot give a valid configuration; the node must not start. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** Reads the keys above from `env`. Collects every problem before failing, so one start shows them all. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const text = (key: string): string | undefined => {
    const value = env[key]?.trim();
    return value ? value : undefined;
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const value = text(key);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    problems.push(`${key}=${value} is not one of ${allowed.join(", ")}`);
    return fallback;
  };
  const number = (key: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number => {
    const value = text(key);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
      problems.push(`${key}=${value} is not a number between ${min} and ${max}`);
      return fallback;
    }
    return parsed;
  };
  const url = (key: string, protocols: string[]): string | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol)) problems.push(`${key} must use ${protocols.join(" or ")}`);
    } catch {
      problems.push(`${key} is not a valid URL`);
    }
    return value;
  };

  const nodeEnv = oneOf<NodeEnv>("NODE_ENV", ["development", "production", "test"], "development");
  const isProduction = nodeEnv === "production";

  const requested = text("SERVICES");
  let services: ServiceName[] = [...SERVICE_NAMES];
  if (requested !== undefined) {
    const names = requested.split(",").map((name) => name.trim().toLowerCase());
    const unknown = names.filter((name) => !(SERVICE_NAMES as readonly string[]).includes(name));
    if (unknown.length > 0) problems.push(`SERVICES names unknown services: ${unknown.join(", ")}`);
    services = SERVICE_NAMES.filter((name) => names.includes(name));
  }

  const postgres = ["postgres:", "postgresql:"];
  const overrides: Partial<Record<ServiceName, string>> = {};
  for (const name of SERVICE_NAMES) {
    const value = url(`${name.toUpperCase()}_DATABASE_URL`, postgres);
    if (value) overrides[name] = value;
  }
  const databaseUrl = url("DATABASE_URL", postgres) ?? null;
  if (isProduction && !databaseUrl) {
    const missing = services.filter((name) => hasDatabase(name) && !overrides[name]);
    if (missing.length > 0) problems.push("DATABASE_URL is required in production (the embedded PostgreSQL is not)");
  }

  const flag = (key: string, fallback: boolean): boolean => {
    const value = text(key)?.toLowerCase();
    if (value === undefined) return fallback;
    if (["true", "1", "yes"].includes(value)) return true;
    if (["false", "0", "no"].includes(value)) return false;
    problems.push(`${key}=${value} is not true or false`);
    return fallback;
  };

  const keySecret = text("AUTH_KEY_SECRET") ?? null;
  if (isProduction && services.includes("auth") && !keySecret) {
    problems.push("AUTH_KEY_SECRET is required in production on nodes that host auth");
  }
  if (keySecret && keySecret.length < 32) problems.push("AUTH_KEY_SECRET must be at least 32 characters");

  const anchorKey = text("AUDIT_ANCHOR_KEY") ?? null;
  if (isProduction && services.includes("audit") && !anchorKey) {
    problems.push("AUDIT_ANCHOR_KEY is required in production on nodes that host audit");
  }
  if (anchorKey && anchorKey.length < 32) problems.push("AUDIT_ANCHOR_KEY must be at least 32 characters");

  const transporter = text("TRANSPORTER") ?? null;
  const nats = {
    user: text("NATS_USER") ?? null,
    password: text("NATS_PASSWORD") ?? null,
    tlsCa: text("NATS_TLS_CA") ?? null,
  };
  if (Boolean(nats.user) !== Boolean(nats.password)) problems.push("NATS_USER and NATS_PASSWORD go together");
  const bus = busOf(text("BUS_ROLE") ?? "dev", text("BUS_SIGNING_KEY"), text("BUS_TRUSTED_KEYS"), problems);
  if (isProduction && transporter) {
    // A production bus is a trust boundary: who joins it, and which identities the nodes on it may vouch for.
    if (!nats.user) problems.push("NATS_USER and NATS_PASSWORD are required in production with a transporter");
    if (!nats.tlsCa) problems.push("NATS_TLS_CA is required in production with a transporter (NATS over TLS)");
    if (!bus.signingKey) problems.push("BUS_SIGNING_KEY is required in production with a transporter");
    if (Object.keys(bus.trustedKeys).length === 0) {
      problems.push("BUS_TRUSTED_KEYS is required in production with a transporter");
    }
  }
  const tracingExporters = tracingExportersOf(text("TRACING_EXPORTER"), nodeEnv, problems);
  const tracingEndpoint = url("TRACING_ENDPOINT", ["http:", "https:"]) ?? null;
  if (tracingExporters.includes("zipkin") && !tracingEndpoint) {
    problems.push("TRACING_EXPORTER=zipkin needs TRACING_ENDPOINT");
  }

  const logFormat = oneOf<LogFormat>("LOG_FORMAT", ["pretty", "json"], isProduction ? "json" : "pretty");
  const config: Config = {
    env: nodeEnv,
    isProduction,
    port: number("PORT", 3000, { max: 65535 }),
    metricsPort: number("METRICS_PORT", 3030, { max: 65535 }),
    transporter,
    nats,
    bus,
    services,
    database: {
      url: databaseUrl,
      overrides,
      replicaUrl: url("DATABASE_REPLICA_URL", postgres) ?? null,
      namePrefix: text("DATABASE_NAME_PREFIX") ?? "",
      poolMax: number("DATABASE_POOL_MAX", 10, { min: 1, max: 1000 }),
    },
    log: {
      level: oneOf<LogLevel>("LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace"], "info"),
      format: logFormat,
      quietTerminal: logFormat === "pretty" && text("LOG_LEVEL") === undefined,
      shipLevel: oneOf<LogLevel | "off">(
        "LOG_SHIP_LEVEL",
        ["fatal", "error", "warn", "info", "debug", "trace", "off"],
        "info",
      ),
      retentionDays: number("LOG_RETENTION_DAYS", 7, { min: 1, max: 3650 }),
    },
    nodeID: text("NODE_ID") ?? `${hostname()}-${process.pid}`,
    namespace: text("NAMESPACE") ?? "aicunet",
    requestTimeout: number("REQUEST_TIMEOUT", 10_000, { min: 1 }),
    retries: number("RETRY_RETRIES", 3, { max: 20 }),
    circuitBreakerThreshold: number("CIRCUIT_BREAKER_THRESHOLD", 0.5, { max: 1 }),
    bulkhead: {
      concurrency: number("BULKHEAD_CONCURRENCY", 50, { min: 1 }),
      maxQueueSize: number("BULKHEAD_MAX_QUEUE", 500, { min: 0 }),
    },
    tracing: {
      exporters: tracingExporters,
      endpoint: tracingEndpoint,
      sampleRate: number("TRACING_SAMPLE_RATE", isProduction ? 0.1 : 1, { max: 1 }),
      slowMs: number("TRACING_SLOW_MS", 1000),
    },
    shutdownTimeout: number("SHUTDOWN_TIMEOUT", 10_000, { min: 0 }),
    dataDir: path.resolve(text("DATA_DIR") ?? ".data"),
    embeddedPostgresPort: number("EMBEDDED_PG_PORT", 54320, { min: 1, max: 65535 }),
    audit: { anchorKey },
    auth: {
      keySecret,
      issuer: text("AUTH_ISSUER") ?? "aicunet",
      audience: text("AUTH_AUDIENCE") ?? "aicunet-api",
      accessTokenTtl: number("ACCESS_TOKEN_TTL", 900, { min: 10, max: 86_400 }),
      tokenCacheSize: number("TOKEN_CACHE_SIZE", 10_000, { min: 0, max: 10_000_000 }),
      refreshTokenTtl: number("REFRESH_TOKEN_TTL", 2_592_000, { min: 60 }),
      selfRegistration: flag("AUTH_SELF_REGISTRATION", true),
      adminEmail: text("ADMIN_EMAIL")?.toLowerCase() ?? null,
      adminPassword: text("ADMIN_PASSWORD") ?? null,
      passwordHashCost: number("PASSWORD_HASH_COST", 17, { min: 14, max: 20 }),
    },
    redisUrl: url("REDIS_URL", ["redis:", "rediss:"]) ?? null,
    rateLimits: {
      perIp: number("RATE_LIMIT_IP", 600, { min: 1 }),
      perUser: number("RATE_LIMIT_USER", 1200, { min: 1 }),
      auth: number("RATE_LIMIT_AUTH", 10, { min: 1 }),
      loginAccount: number("RATE_LIMIT_LOGIN_ACCOUNT", 10, { min: 1 }),
      probe: number("RATE_LIMIT_PROBE", 600, { min: 1 }),
    },
    trustedProxies: trustedProxiesOf(text("TRUSTED_PROXIES"), problems),
    jetstreamReplicas: number("JETSTREAM_REPLICAS", 1, { min: 1, max: 5 }),
    corsOrigins: (text("CORS_ORIGINS") ?? "")
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean),
    delivery: {
      maxAttempts: number("DELIVERY_MAX_ATTEMPTS", 5, { min: 1, max: 100 }),
      retryDelayMs: number("DELIVERY_RETRY_DELAY", 1000, { min: 1, max: 60_000 }),
      maxRetryDelayMs: 60_000,
      ackWaitMs: number("DELIVERY_ACK_WAIT", 10_000, { min: 1000, max: 600_000 }),
      outboxPollMs: number("OUTBOX_POLL_INTERVAL", 10_000, { min: 100, max: 3_600_000 }),
    },
    saga: {
      stepTimeoutMs: number("SAGA_STEP_TIMEOUT", 5000, { min: 10, max: 600_000 }),
      stepAttempts: number("SAGA_STEP_ATTEMPTS", 3, { min: 1, max: 100 }),
      retryDelayMs: number("SAGA_RETRY_DELAY", 500, { min: 1, max: 60_000 }),
      compensationAttempts: number("SAGA_COMPENSATION_ATTEMPTS", 10, { min: 1, max: 1000 }),
      waitUnavailableMs: number("SAGA_WAIT_UNAVAILABLE", 10_000, { min: 10, max: 600_000 }),
      maxWaits: number("SAGA_MAX_WAITS", 30, { min: 0, max: 100_000 }),
      leaseMs: number("SAGA_LEASE", 10_000, { min: 300, max: 3_600_000 }),
      sweepIntervalMs: number("SAGA_SWEEP_INTERVAL", 1000, { min: 50, max: 3_600_000 }),
      concurrency: number("SAGA_CONCURRENCY", 64, { min: 1, max: 10_000 }),
      stallAfterMs: number("SAGA_STALL_AFTER", 60_000, { min: 100, max: 86_400_000 }),
    },
    payments: {
      slowMs: number("PAYMENTS_SLOW_MS", 15_000, { min: 0, max: 600_000 }),
      flakyFailures: number("PAYMENTS_FLAKY_FAILURES", 2, { min: 0, max: 100 }),
    },
    orders: { maxBacklog: number("ORDERS_MAX_BACKLOG", 1000, { min: 1, max: 10_000_000 }) },
    failpoints: (text("FAILPOINTS") ?? "")
      .split(",")
      .map((point) => point.trim())
      .filter(Boolean),
    alerts: {
      intervalMs: number("ALERT_INTERVAL", 15_000, { min: 100, max: 3_600_000 }),
      cooldownMs: number("ALERT_COOLDOWN", 600_000, { min: 0 }),
      errorLogs: number("ALERT_ERROR_LOGS", 10, { min: 1 }),
      errorWindowMs: number("ALERT_ERROR_WINDOW", 300_000, { min: 1000 }),
      dlqDepth: number("ALERT_DLQ_DEPTH", 1, { min: 1 }),
      smtpUrl: url("ALERT_SMTP_URL", ["smtp:", "smtps:"]) ?? null,
      emailFrom: text("ALERT_EMAIL_FROM") ?? "alerts@aicunet.local",
      emailTo: (text("ALERT_EMAIL_TO") ?? "")
        .split(",")
        .map((address) => address.trim())
        .filter(Boolean),
      webhookUrl: url("ALERT_WEBHOOK_URL", ["http:", "https:"]) ?? null,
    },
  };

  if (config.alerts.smtpUrl && config.alerts.emailTo.length === 0) {
    problems.push("ALERT_SMTP_URL needs ALERT_EMAIL_TO (who gets the alert emails)");
  }
  if (isProduction && config.failpoints.length > 0) problems.push("FAILPOINTS are for fault tests, not production");
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** `BUS_SIGNING_KEY` must be a 32-byte seed; `BUS_TRUSTED_KEYS` entries `role:publicKey` with 32-byte keys. */
function busOf(role: string, signingKey: string | undefined, trusted: string | undefined, problems: string[]) {
  const is32Bytes = (value: string) => /^[A-Za-z0-9_-]{43}$/.test(value);
  if (signingKey !== undefined && !is32Bytes(signingKey)) {
    problems.push("BUS_SIGNING_KEY must be a 32-byte Ed25519 seed in base64url (43 characters)");
  }
  const trustedKeys: Record<string, string> = {};
  for (const entry of (trusted ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean)) {
    const [name, key, ...rest] = entry.split(":");
    if (!name || !key || rest.length > 0 || !is32Bytes(key)) {
      problems.push(`BUS_TRUSTED_KEYS entry ${entry} is not role:publicKey (a 32-byte Ed25519 key in base64url)`);
    } else trustedKeys[name] = key;
  }
  // A node receives its own balanced events too: a list that does not vouch for its own key would drop their callers.
  if (signingKey && is32Bytes(signingKey) && Object.keys(trustedKeys).length > 0) {
    if (trustedKeys[role] !== publicKeyOfSeed(signingKey)) {
      problems.push(`BUS_TRUSTED_KEYS must list this node's role ${role} with the public key of BUS_SIGNING_KEY`);
    }
  }
  return { role, signingKey: signingKey ?? null, trustedKeys };
}

function trustedProxiesOf(value: string | undefined, problems: string[]): string[] {
  const entries = (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  try {
    parseTrustedProxies(entries);
  } catch (err) {
    problems.push(`TRUSTED_PROXIES: ${(err as Error).message}`);
  }
  return entries;
}

const TRACING_EXPORTERS: readonly TracingExporterName[] = ["console", "event", "zipkin"];

/**
 * `TRACING_EXPORTER`: a comma list of exporters, or `none`. In development the span store (the web console shows an
 * order's trace from it); the terminal's span trees (`console`) only when asked for: a box per action drowned the
 * terminal's start-up lines.
 */
function tracingExportersOf(value: string | undefined, env: NodeEnv, problems: string[]): TracingExporterName[] {
  if (value === undefined) return env === "development" ? ["event"] : [];
  const names = value
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.length === 1 && names[0] === "none") return [];
  const unknown = names.filter((name) => !(TRACING_EXPORTERS as readonly string[]).includes(name));
  if (unknown.length > 0) problems.push(`TRACING_EXPORTER names unknown exporters: ${unknown.join(", ")}`);
  return TRACING_EXPORTERS.filter((name) => names.includes(name));
}

let current: Config | undefined;

/** The process-wide configuration, read from the environment on first use. */
export function config(): Config {
  current ??= loadConfig();
  return current;
}

/** Replaces the process-wide configuration; the start script uses it once the embedded database URL is known. */
export function setConfig(next: Config): void {
  current = Object.freeze(next);
}
