/**
 * Every environment key the platform understands, declared once: its kind and bounds, default, documentation and
 * place in the `Config` object (the tree below has the shape of `Config`, which is derived from it). The README's
 * configuration table is generated from it (`npm run docs:config`), in this order.
 */
import { hostname } from "node:os";
import { publicKeyOfSeed } from "./bus-claims";
import { parseTrustedProxies } from "./client-address";
import {
  NODE_ENVS,
  type ConfigOf,
  type SchemaGroup,
  checkUrl,
  commaList,
  custom,
  derived,
  directory,
  flag,
  list,
  number,
  oneOf,
  optionalText,
  quietly,
  text,
  url,
} from "./config-kinds";

export { NODE_ENVS, type NodeEnv } from "./config-kinds";

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

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["pretty", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const TRACING_EXPORTERS = ["console", "event", "zipkin"] as const;
export type TracingExporterName = (typeof TRACING_EXPORTERS)[number];

/** The first admin's e-mail when `ADMIN_EMAIL` is unset. */
export const DEFAULT_ADMIN_EMAIL = "admin@aicunet.local";

const POSTGRES = ["postgres:", "postgresql:"];
const HTTP = ["http:", "https:"];

/** A 32-byte Ed25519 seed or public key in base64url. */
const isEd25519Key = (value: string): boolean => /^[A-Za-z0-9_-]{43}$/.test(value);

// Named because a derived value reads it again (`log.quietTerminal`).
const LOG_FORMAT = oneOf({
  key: "LOG_FORMAT",
  values: LOG_FORMATS,
  default: "pretty",
  productionDefault: "json",
  doc: "`pretty` for people, `json` for log shippers.",
});

export const CONFIG_SCHEMA = {
  env: oneOf({
    key: "NODE_ENV",
    values: NODE_ENVS,
    default: "development",
    doc: "`development`, `production` or `test`.",
  }),
  isProduction: derived((source) => source.isProduction),
  port: number({
    key: "PORT",
    default: 3000,
    max: 65535,
    doc: "HTTP port: the gateway (`api`: REST API, health, UI) on nodes that host it; `/health/live` and `/health/ready` on the others.",
  }),
  metricsPort: number({
    key: "METRICS_PORT",
    default: 3030,
    max: 65535,
    doc: "Port of the Prometheus `/metrics` endpoint; `0` turns it off.",
  }),
  transporter: optionalText({
    key: "TRANSPORTER",
    doc: "Moleculer transporter, e.g. `nats://127.0.0.1:4222`. Unset: a single process with no transporter.",
  }),
  /** NATS credentials and TLS, for the transporter and the durable channels alike. */
  nats: {
    user: optionalText({
      key: "NATS_USER",
      shown: "(none; required in production)",
      doc: "This role's NATS user (its publish/subscribe allow-lists are in the NATS server's authorization config); used by the transporter and the durable channels. With `NATS_PASSWORD`.",
    }),
    password: optionalText({
      key: "NATS_PASSWORD",
      shown: "(none; required in production)",
      doc: "Password of `NATS_USER`.",
    }),
    tlsCa: optionalText({
      key: "NATS_TLS_CA",
      shown: "(none; required in production)",
      doc: "PEM file of the CA that signed the NATS server's certificate; set, the connection to NATS is TLS and the server is verified.",
    }),
  },
  /** Caller claims on the bus (lib/bus-claims.ts); a null key in development is generated at start. */
  bus: {
    role: text({
      key: "BUS_ROLE",
      default: "dev",
      doc: "Name of this node's role (`gateway`, `identity`, ...): which public key in `BUS_TRUSTED_KEYS` verifies the caller claims it signs. The `gateway` role may only assert users, clients and a few system reads (docs/security.md).",
    }),
    signingKey: custom<string | null>({
      key: "BUS_SIGNING_KEY",
      shown: "(required in production with a transporter)",
      doc: "This role's Ed25519 seed (32 bytes, base64url) that signs the caller identity of every call and event it sends over the bus. Development without it: generated once into `DATA_DIR/secrets/` and trusted as role `dev`.",
      read: (source) => {
        const value = source.text("BUS_SIGNING_KEY");
        if (value === undefined) return null;
        if (!isEd25519Key(value)) {
          source.problem("BUS_SIGNING_KEY must be a 32-byte Ed25519 seed in base64url (43 characters)");
        }
        return value;
      },
    }),
    trustedKeys: custom<Record<string, string>>({
      key: "BUS_TRUSTED_KEYS",
      shown: "(required in production with a transporter)",
      doc: "Comma list of `role:publicKey` (base64url Ed25519) whose caller claims this node accepts; a claim from any other key is dropped. `npm run bus-keys` makes a set.",
      read: (source) => {
        const trustedKeys: Record<string, string> = {};
        for (const entry of commaList(source.text("BUS_TRUSTED_KEYS"))) {
          const [role, key, ...rest] = entry.split(":");
          if (!role || !key || rest.length > 0 || !isEd25519Key(key)) {
            source.problem(
              `BUS_TRUSTED_KEYS entry ${entry} is not role:publicKey (a 32-byte Ed25519 key in base64url)`,
            );
          } else trustedKeys[role] = key;
        }
        return trustedKeys;
      },
    }),
  },
  services: custom<ServiceName[]>({
    key: "SERVICES",
    shown: "(all)",
    doc: `Comma list of the services this process hosts: ${SERVICE_NAMES.join(", ")}.`,
    read: (source) => {
      const requested = source.text("SERVICES");
      if (requested === undefined) return [...SERVICE_NAMES];
      const names = requested.split(",").map((name) => name.trim().toLowerCase());
      const unknown = names.filter((name) => !SERVICE_NAMES.some((known) => known === name));
      if (unknown.length > 0) source.problem(`SERVICES names unknown services: ${unknown.join(", ")}`);
      return SERVICE_NAMES.filter((name) => names.includes(name));
    },
  }),
  database: {
    /** Server URL shared by the services; null means the embedded PostgreSQL is used. */
    url: url({
      key: "DATABASE_URL",
      protocols: POSTGRES,
      shown: "(embedded)",
      doc: "PostgreSQL server on which each service gets its own database, named after the service and created if missing. Unset: an embedded PostgreSQL under `DATA_DIR` (development only).",
    }),
    /** Per-service URLs from `<SERVICE>_DATABASE_URL`. */
    overrides: custom<Partial<Record<ServiceName, string>>>({
      key: "<SERVICE>_DATABASE_URL",
      shown: "(none)",
      doc: "Overrides `DATABASE_URL` for one service, e.g. `ORDERS_DATABASE_URL`; used as given (database included).",
      read: (source) => {
        const overrides: Partial<Record<ServiceName, string>> = {};
        for (const name of SERVICE_NAMES) {
          const key = `${name.toUpperCase()}_DATABASE_URL`;
          const value = source.text(key);
          if (value === undefined) continue;
          checkUrl(source, key, value, POSTGRES);
          overrides[name] = value;
        }
        return overrides;
      },
    }),
    /** Replica server URL; a service's replica database has the same name as on the primary. */
    replicaUrl: url({
      key: "DATABASE_REPLICA_URL",
      protocols: POSTGRES,
      doc: "A streaming replica of the `DATABASE_URL` server; services that read from replicas (orders) send their list and get queries there. Unset: reads go to the primary.",
    }),
    namePrefix: text({
      key: "DATABASE_NAME_PREFIX",
      default: "",
      doc: "Prefix for the per-service database names, so several environments can share one server.",
    }),
    poolMax: number({
      key: "DATABASE_POOL_MAX",
      default: 10,
      min: 1,
      max: 1000,
      doc: "Connection pool size per service database.",
    }),
  },
  log: {
    level: oneOf({
      key: "LOG_LEVEL",
      values: LOG_LEVELS,
      default: "info",
      doc: "`fatal`, `error`, `warn`, `info`, `debug` or `trace`. Unset with the `pretty` format, the terminal shows the start banner, the gateway's requests and every module's warnings; set it to see every module's lines at that level.",
    }),
    format: LOG_FORMAT,
    /** Pretty format without an explicit LOG_LEVEL: the terminal keeps only requests, warnings and the banner. */
    quietTerminal: derived(
      (source) => LOG_FORMAT.read(quietly(source)) === "pretty" && source.text("LOG_LEVEL") === undefined,
    ),
    shipLevel: oneOf({
      key: "LOG_SHIP_LEVEL",
      values: [...LOG_LEVELS, "off"],
      default: "info",
      doc: "Records at this level and above are shipped to the `logs` service (the log store); `off` ships nothing.",
    }),
    retentionDays: number({
      key: "LOG_RETENTION_DAYS",
      default: 7,
      min: 1,
      max: 3650,
      doc: "How long the log store keeps records, in days.",
    }),
  },
  nodeID: text({
    key: "NODE_ID",
    // The same for every load in one process, so it is computed once.
    default: `${hostname()}-${process.pid}`,
    shown: "<hostname>-<pid>",
    doc: "Moleculer node id; unique in the cluster.",
  }),
  namespace: text({
    key: "NAMESPACE",
    default: "aicunet",
    doc: "Moleculer namespace; nodes only see nodes of their namespace.",
  }),
  requestTimeout: number({
    key: "REQUEST_TIMEOUT",
    default: 10_000,
    min: 1,
    doc: "Default action call timeout in ms (per-action overrides).",
  }),
  retries: number({
    key: "RETRY_RETRIES",
    default: 3,
    max: 20,
    doc: "Retries of a call that failed with a retryable error.",
  }),
  circuitBreakerThreshold: number({
    key: "CIRCUIT_BREAKER_THRESHOLD",
    default: 0.5,
    max: 1,
    doc: "Failure ratio in the window that opens an endpoint's circuit breaker.",
  }),
  bulkhead: {
    concurrency: number({
      key: "BULKHEAD_CONCURRENCY",
      default: 50,
      min: 1,
      doc: "Concurrent calls per action on a node before queueing.",
    }),
    maxQueueSize: number({
      key: "BULKHEAD_MAX_QUEUE",
      default: 500,
      doc: "Queued calls per action before `QueueIsFullError`.",
    }),
  },
  tracing: {
    exporters: custom<TracingExporterName[]>({
      key: "TRACING_EXPORTER",
      shown: "event (none in production and test)",
      doc: "Comma list of `console`, `event` (to the log store's span store, `GET /api/logs/traces/:traceId`), `zipkin` (also what Jaeger and OpenTelemetry collectors accept), or `none` (no spans are made at all; request ids are still propagated).",
      // In development the span store (the web console shows an order's trace from it); the terminal's span trees
      // (`console`) only when asked for: a box per action drowned the terminal's start-up lines.
      read: (source) => {
        const value = source.text("TRACING_EXPORTER");
        if (value === undefined) return source.mode === "development" ? ["event"] : [];
        const names = commaList(value);
        if (names.length === 1 && names[0] === "none") return [];
        const unknown = names.filter((name) => !TRACING_EXPORTERS.some((known) => known === name));
        if (unknown.length > 0) source.problem(`TRACING_EXPORTER names unknown exporters: ${unknown.join(", ")}`);
        return TRACING_EXPORTERS.filter((name) => names.includes(name));
      },
    }),
    sampleRate: number({
      key: "TRACING_SAMPLE_RATE",
      default: 1,
      productionDefault: 0.1,
      max: 1,
      doc: "Share of traces exported whole, from 0 to 1, chosen by the trace id so every node keeps the same ones. Traces outside it are still exported where a span failed or was slow (`TRACING_SLOW_MS`).",
    }),
    slowMs: number({
      key: "TRACING_SLOW_MS",
      default: 1000,
      doc: "A span this long or longer, in ms, keeps its node's part of a trace outside the sampled share.",
    }),
    endpoint: url({
      key: "TRACING_ENDPOINT",
      protocols: HTTP,
      doc: "Collector base URL for the `zipkin` exporter, e.g. `http://jaeger:9411`.",
    }),
  },
  shutdownTimeout: number({
    key: "SHUTDOWN_TIMEOUT",
    default: 10_000,
    doc: "How long shutdown waits for in-flight requests, in ms.",
  }),
  dataDir: directory({
    key: "DATA_DIR",
    default: ".data",
    doc: "Where the embedded PostgreSQL, generated development secrets and the audit spool (records waiting for NATS, `audit-spool/<NAMESPACE>/`) live.",
  }),
  embeddedPostgresPort: number({
    key: "EMBEDDED_PG_PORT",
    default: 54320,
    min: 1,
    max: 65535,
    doc: "Port of the embedded PostgreSQL (loopback only).",
  }),
  audit: {
    /** The key audit records are anchored with (lib/audit.ts); null in development means a generated one. */
    anchorKey: optionalText({
      key: "AUDIT_ANCHOR_KEY",
      minLength: 32,
      shown: "(required in production)",
      doc: "Signs every audit record's hash (HMAC-SHA256), so a rewrite by whoever can write the audit database shows in `GET /api/audit/verify`; the database never sees it. 32+ characters, the same on every node that hosts audit. Development without it: generated once into `DATA_DIR/secrets/`.",
    }),
  },
  auth: {
    keySecret: optionalText({
      key: "AUTH_KEY_SECRET",
      minLength: 32,
      shown: "(required in production)",
      doc: "Encrypts the JWT signing keys at rest in the auth database. Development without it: generated once into `DATA_DIR/secrets/`.",
    }),
    issuer: text({ key: "AUTH_ISSUER", default: "aicunet", doc: "`iss` of the access tokens." }),
    audience: text({ key: "AUTH_AUDIENCE", default: "aicunet-api", doc: "`aud` of the access tokens." }),
    accessTokenTtl: number({
      key: "ACCESS_TOKEN_TTL",
      default: 900,
      min: 10,
      max: 86_400,
      doc: "Access token lifetime in seconds.",
    }),
    tokenCacheSize: number({
      key: "TOKEN_CACHE_SIZE",
      default: 10_000,
      max: 10_000_000,
      doc: "Access tokens whose signature a gateway keeps as verified (until each one's expiry; revocation and roles are still checked on every request). 0 verifies every request.",
    }),
    refreshTokenTtl: number({
      key: "REFRESH_TOKEN_TTL",
      default: 2_592_000,
      min: 60,
      doc: "Refresh token lifetime in seconds (30 days).",
    }),
    selfRegistration: flag({
      key: "AUTH_SELF_REGISTRATION",
      default: true,
      doc: "Whether `POST /api/auth/register` is open.",
    }),
    // Null when unset, so the start can tell a chosen address from the default one.
    adminEmail: optionalText({
      key: "ADMIN_EMAIL",
      lowercase: true,
      shown: DEFAULT_ADMIN_EMAIL,
      doc: "First admin, created on first start when no admin exists.",
    }),
    adminPassword: optionalText({
      key: "ADMIN_PASSWORD",
      shown: "(generated in development)",
      doc: "Password of the first admin. Required in production when no admin exists; in development a random one is printed once on the terminal (never logged), and must be changed at the first sign-in.",
    }),
    passwordHashCost: number({
      key: "PASSWORD_HASH_COST",
      default: 17,
      min: 14,
      max: 20,
      doc: "scrypt cost as log2(N), with r=8, p=1 (OWASP's minimum is 17).",
    }),
  },
  redisUrl: url({
    key: "REDIS_URL",
    protocols: ["redis:", "rediss:"],
    doc: "Redis for the gateway's rate-limit counters, shared by all gateway replicas. Unset: counters in memory.",
  }),
  rateLimits: {
    perIp: number({ key: "RATE_LIMIT_IP", default: 600, min: 1, doc: "API requests per minute per client IP." }),
    perUser: number({
      key: "RATE_LIMIT_USER",
      default: 1200,
      min: 1,
      doc: "API requests per minute per authenticated user or client.",
    }),
    auth: number({
      key: "RATE_LIMIT_AUTH",
      default: 10,
      min: 1,
      doc: "Refresh, change-password, register and token requests per minute per client IP and endpoint; failed sign-ins per minute per client IP.",
    }),
    loginAccount: number({
      key: "RATE_LIMIT_LOGIN_ACCOUNT",
      default: 10,
      min: 1,
      doc: "Failed sign-ins per account in 15 minutes, from any address, before that account's sign-ins answer 429 until the window ends.",
    }),
    probe: number({
      key: "RATE_LIMIT_PROBE",
      default: 600,
      min: 1,
      doc: "Requests per minute per client IP to `/health/*` and `/.well-known/jwks.json`, counted in each gateway's memory.",
    }),
  },
  jetstreamReplicas: number({
    key: "JETSTREAM_REPLICAS",
    default: 1,
    min: 1,
    max: 5,
    doc: "Copies of each JetStream stream the platform creates (1 on a single nats-server; 3 on a three-node JetStream cluster, so a lost node loses no message).",
  }),
  trustedProxies: list({
    key: "TRUSTED_PROXIES",
    doc: "Comma list of addresses or CIDR ranges of the load balancers in front of the gateway: their `X-Forwarded-For` names the client for the per-IP rate limits and the access log. Unset: the socket's address, the header ignored.",
    check: (entries) => {
      try {
        parseTrustedProxies(entries);
        return undefined;
      } catch (err) {
        return `TRUSTED_PROXIES: ${err instanceof Error ? err.message : String(err)}`;
      }
    },
  }),
  corsOrigins: list({ key: "CORS_ORIGINS", doc: "Comma list of origins allowed by CORS, or `*`." }),
  // Shaped as lib/delivery.ts's `DeliveryPolicy` plus the JetStream and outbox timings.
  delivery: {
    maxAttempts: number({
      key: "DELIVERY_MAX_ATTEMPTS",
      default: 5,
      min: 1,
      max: 100,
      doc: "Deliveries of a durable message to one consumer group before it goes to the dead-letter queue (retryable errors; a validation error goes at once).",
    }),
    retryDelayMs: number({
      key: "DELIVERY_RETRY_DELAY",
      default: 1000,
      min: 1,
      max: 60_000,
      doc: "Delay before a failed message is delivered again, in ms; doubles with each attempt, up to 60 s.",
    }),
    /** Fixed rather than a key: `DELIVERY_RETRY_DELAY` is documented as doubling "up to 60 s". */
    maxRetryDelayMs: derived(() => 60_000),
    ackWaitMs: number({
      key: "DELIVERY_ACK_WAIT",
      default: 10_000,
      min: 1000,
      max: 600_000,
      doc: "How long JetStream waits for a consumer to acknowledge a message before it redelivers it (a crashed consumer), in ms.",
    }),
    outboxPollMs: number({
      key: "OUTBOX_POLL_INTERVAL",
      default: 10_000,
      min: 100,
      max: 3_600_000,
      doc: "Longest pause between two rounds of a service's outbox relay, in ms. A commit that wrote outbox rows wakes the relays at once (LISTEN/NOTIFY); the poll covers a notification missed while the listening connection was down.",
    }),
  },
  saga: {
    stepTimeoutMs: number({
      key: "SAGA_STEP_TIMEOUT",
      default: 5000,
      min: 10,
      max: 600_000,
      doc: "How long a saga step (stock, payment, shipping) may take, in ms.",
    }),
    stepAttempts: number({
      key: "SAGA_STEP_ATTEMPTS",
      default: 3,
      min: 1,
      max: 100,
      doc: "Tries of a saga step that fails transiently (timeout, 5xx) before the saga compensates.",
    }),
    retryDelayMs: number({
      key: "SAGA_RETRY_DELAY",
      default: 500,
      min: 1,
      max: 60_000,
      doc: "Delay before a saga step is tried again, in ms; doubles with each attempt, up to 30 s.",
    }),
    compensationAttempts: number({
      key: "SAGA_COMPENSATION_ATTEMPTS",
      default: 10,
      min: 1,
      max: 1000,
      doc: "Tries of a compensation (release stock, refund, cancel shipment) before the saga is parked as FAILED for an operator.",
    }),
    waitUnavailableMs: number({
      key: "SAGA_WAIT_UNAVAILABLE",
      default: 10_000,
      min: 10,
      max: 600_000,
      doc: "How long a saga waits before calling a participant again that is unavailable (no node, circuit breaker open), in ms.",
    }),
    maxWaits: number({
      key: "SAGA_MAX_WAITS",
      default: 30,
      max: 100_000,
      doc: "Waits for an unavailable participant before the attempt counts as failed (so a breaker that keeps opening ends in compensation).",
    }),
    /** An engine's hold on the sagas it runs, renewed every third of it. */
    leaseMs: number({
      key: "SAGA_LEASE",
      default: 10_000,
      min: 300,
      max: 3_600_000,
      doc: "How long a saga engine owns the sagas it runs without renewing its lease (it renews every third of it), in ms. A node that dies leaves its sagas to the others this long after its last renewal. Keep it well above the engine's pauses (GC, a busy event loop).",
    }),
    sweepIntervalMs: number({
      key: "SAGA_SWEEP_INTERVAL",
      default: 1000,
      min: 50,
      max: 3_600_000,
      doc: "How often the saga engine looks for sagas no engine owns (a dead node's expired lease, a stopped node's released one) and takes them over, in ms.",
    }),
    /** Actions one engine calls at once. */
    concurrency: number({
      key: "SAGA_CONCURRENCY",
      default: 64,
      min: 1,
      max: 10_000,
      doc: "Saga actions one engine node calls at once; the others wait their turn (in memory, under the node's lease), so a burst of sagas does not flood the participants' bulkheads.",
    }),
    /** An order PENDING this long has its `order.created` sent again. */
    stallAfterMs: number({
      key: "SAGA_STALL_AFTER",
      default: 60_000,
      min: 100,
      max: 86_400_000,
      doc: "How long an order may stay PENDING, its saga not having moved it, before the orders service sends its `order.created` again (a message lost after it was acknowledged; the saga engine's inbox drops it if the saga did start), in ms.",
    }),
  },
  alerts: {
    intervalMs: number({
      key: "ALERT_INTERVAL",
      default: 15_000,
      min: 100,
      max: 3_600_000,
      doc: "How often the `alerts` service evaluates its rules, in ms.",
    }),
    cooldownMs: number({
      key: "ALERT_COOLDOWN",
      default: 600_000,
      doc: "After an alert was sent, the same rule and key does not notify again for this long (a flapping condition), in ms.",
    }),
    errorLogs: number({
      key: "ALERT_ERROR_LOGS",
      default: 10,
      min: 1,
      doc: "Error-level log records within `ALERT_ERROR_WINDOW` that fire the `error-rate` alert.",
    }),
    errorWindowMs: number({
      key: "ALERT_ERROR_WINDOW",
      default: 300_000,
      min: 1000,
      doc: "The window of the `error-rate` alert, in ms.",
    }),
    dlqDepth: number({
      key: "ALERT_DLQ_DEPTH",
      default: 1,
      min: 1,
      doc: "Pending dead letters on one channel that fire the `dlq-depth` alert.",
    }),
    smtpUrl: url({
      key: "ALERT_SMTP_URL",
      protocols: ["smtp:", "smtps:"],
      doc: "SMTP server for alert emails, e.g. `smtp://user:pass@mail.example.com:587`. Unset: no email.",
    }),
    emailFrom: text({ key: "ALERT_EMAIL_FROM", default: "alerts@aicunet.local", doc: "Sender of alert emails." }),
    emailTo: list({ key: "ALERT_EMAIL_TO", doc: "Comma list of alert email recipients." }),
    webhookUrl: url({
      key: "ALERT_WEBHOOK_URL",
      protocols: HTTP,
      doc: "Slack-compatible incoming webhook for alerts (a JSON `{ text }` POST). Unset: no webhook.",
    }),
  },
  payments: {
    slowMs: number({
      key: "PAYMENTS_SLOW_MS",
      default: 15_000,
      max: 600_000,
      doc: "How long the simulated provider takes for `pm_card_slow` (longer than the step timeout), in ms.",
    }),
    flakyFailures: number({
      key: "PAYMENTS_FLAKY_FAILURES",
      default: 2,
      max: 100,
      doc: "How many calls for one charge fail transiently with `pm_card_flaky` before it succeeds.",
    }),
  },
  /** Orders not yet final above which new orders are refused (backpressure at intake). */
  orders: {
    maxBacklog: number({
      key: "ORDERS_MAX_BACKLOG",
      default: 1000,
      min: 1,
      max: 10_000_000,
      doc: "Orders not yet final (PENDING, PAID or SHIPPED: their saga has not ended) above which `POST /api/orders` is refused with 503 `OVERLOADED` and `Retry-After`, before anything is written. Measured by one indexed count, at most every 250 ms.",
    }),
  },
  /** Crash and drop points armed for a fault test (lib/failpoints.ts); always empty in production. */
  failpoints: list({
    key: "FAILPOINTS",
    doc: "Fault tests only: comma list of crash points (`outbox.published:<channel>`, `consumer.committing:<channel>`, `saga.committed:<step>`) where the process kills itself, and of drop points (`outbox.drop:<channel>`: the first message of that channel is marked sent and never published) (lib/failpoints.ts). Refused in production.",
  }),
} satisfies SchemaGroup;

/** The configuration every node runs with: one field per setting of `CONFIG_SCHEMA`, in its shape. */
export type Config = ConfigOf<typeof CONFIG_SCHEMA>;

/** A condition over several keys, checked once every key is read; `problem` is reported when `when` holds. */
export interface ConfigRule {
  when: (config: Config) => boolean;
  problem: string | ((config: Config) => string);
}

const inProductionWithTransporter = (config: Config) => config.isProduction && config.transporter !== null;

export const CONFIG_RULES: readonly ConfigRule[] = [
  {
    // A gateway-only node keeps no data, and a service with its own URL needs no shared one.
    when: (c) =>
      c.isProduction && !c.database.url && c.services.some((name) => hasDatabase(name) && !c.database.overrides[name]),
    problem: "DATABASE_URL is required in production (the embedded PostgreSQL is not)",
  },
  // No default secret ever ships: production refuses to start without one; development generates one.
  {
    when: (c) => c.isProduction && c.services.includes("auth") && !c.auth.keySecret,
    problem: "AUTH_KEY_SECRET is required in production on nodes that host auth",
  },
  {
    when: (c) => c.isProduction && c.services.includes("audit") && !c.audit.anchorKey,
    problem: "AUDIT_ANCHOR_KEY is required in production on nodes that host audit",
  },
  {
    when: (c) => Boolean(c.nats.user) !== Boolean(c.nats.password),
    problem: "NATS_USER and NATS_PASSWORD go together",
  },
  {
    // A node receives its own balanced events too: a list that does not vouch for its own key would drop their callers.
    when: ({ bus }) =>
      bus.signingKey !== null &&
      isEd25519Key(bus.signingKey) &&
      Object.keys(bus.trustedKeys).length > 0 &&
      bus.trustedKeys[bus.role] !== publicKeyOfSeed(bus.signingKey),
    problem: ({ bus }) =>
      `BUS_TRUSTED_KEYS must list this node's role ${bus.role} with the public key of BUS_SIGNING_KEY`,
  },
  // A production bus is a trust boundary: who joins it, and which identities the nodes on it may vouch for.
  {
    when: (c) => inProductionWithTransporter(c) && !c.nats.user,
    problem: "NATS_USER and NATS_PASSWORD are required in production with a transporter",
  },
  {
    when: (c) => inProductionWithTransporter(c) && !c.nats.tlsCa,
    problem: "NATS_TLS_CA is required in production with a transporter (NATS over TLS)",
  },
  {
    when: (c) => inProductionWithTransporter(c) && !c.bus.signingKey,
    problem: "BUS_SIGNING_KEY is required in production with a transporter",
  },
  {
    when: (c) => inProductionWithTransporter(c) && Object.keys(c.bus.trustedKeys).length === 0,
    problem: "BUS_TRUSTED_KEYS is required in production with a transporter",
  },
  {
    when: (c) => c.tracing.exporters.includes("zipkin") && !c.tracing.endpoint,
    problem: "TRACING_EXPORTER=zipkin needs TRACING_ENDPOINT",
  },
  {
    when: (c) => c.alerts.smtpUrl !== null && c.alerts.emailTo.length === 0,
    problem: "ALERT_SMTP_URL needs ALERT_EMAIL_TO (who gets the alert emails)",
  },
  {
    when: (c) => c.isProduction && c.failpoints.length > 0,
    problem: "FAILPOINTS are for fault tests, not production",
  },
];
