import { readFileSync } from "node:fs";
import path from "node:path";
import { publicKeyOfSeed } from "../../lib/bus-claims";
import { CONFIG_KEYS, ConfigError, SERVICE_NAMES, loadConfig } from "../../lib/config";
import { configTable, tableIn } from "../../lib/config-docs";

const SEED = Buffer.alloc(32, 7).toString("base64url");
const PUBLIC_KEY = publicKeyOfSeed(SEED);

describe("loadConfig", () => {
  it("gives the documented defaults for an empty environment", () => {
    const cfg = loadConfig({});
    expect(cfg).toMatchObject({
      env: "development",
      isProduction: false,
      port: 3000,
      metricsPort: 3030,
      transporter: null,
      services: [...SERVICE_NAMES],
      database: { url: null, overrides: {}, namePrefix: "", poolMax: 10 },
      log: { level: "info", format: "pretty" },
      namespace: "aicunet",
      requestTimeout: 10_000,
      tracing: { exporters: ["event"], endpoint: null },
    });
    expect(cfg.dataDir).toMatch(/\.data$/);
  });

  it("reads every documented key it is given", () => {
    const cfg = loadConfig({
      NODE_ENV: "production",
      PORT: "8080",
      METRICS_PORT: "0",
      TRANSPORTER: "nats://127.0.0.1:4222",
      NATS_USER: "gateway",
      NATS_PASSWORD: "nats-password",
      NATS_TLS_CA: "/etc/nats-ca/ca.crt",
      BUS_ROLE: "gateway",
      BUS_SIGNING_KEY: SEED,
      BUS_TRUSTED_KEYS: `gateway:${PUBLIC_KEY},identity:${PUBLIC_KEY}`,
      SERVICES: "api, Products",
      DATABASE_URL: "postgres://u:p@db:5432/postgres",
      ORDERS_DATABASE_URL: "postgres://u:p@replica:5432/orders_db",
      LOG_LEVEL: "debug",
      LOG_SHIP_LEVEL: "warn",
      LOG_RETENTION_DAYS: "30",
      REQUEST_TIMEOUT: "2500",
    });
    expect(cfg.port).toBe(8080);
    expect(cfg.metricsPort).toBe(0);
    expect(cfg.transporter).toBe("nats://127.0.0.1:4222");
    expect(cfg.services).toEqual(["api", "products"]);
    expect(cfg.database.overrides).toEqual({ orders: "postgres://u:p@replica:5432/orders_db" });
    expect(cfg.log).toEqual({
      level: "debug",
      format: "json",
      quietTerminal: false,
      shipLevel: "warn",
      retentionDays: 30,
    });
    expect(cfg.tracing.exporters).toEqual([]);
    expect(cfg.requestTimeout).toBe(2500);
    expect(cfg.nats).toEqual({ user: "gateway", password: "nats-password", tlsCa: "/etc/nats-ca/ca.crt" });
    expect(cfg.bus).toEqual({
      role: "gateway",
      signingKey: SEED,
      trustedKeys: { gateway: PUBLIC_KEY, identity: PUBLIC_KEY },
    });
  });

  it("refuses production on a bus without NATS credentials, TLS and caller-claim keys; development needs none", () => {
    const production = { NODE_ENV: "production", DATABASE_URL: "postgres://db/postgres", SERVICES: "products" };
    expect(() => loadConfig(production)).not.toThrow();
    let error: unknown;
    try {
      loadConfig({ ...production, TRANSPORTER: "nats://nats:4222" });
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).problems).toEqual([
      "NATS_USER and NATS_PASSWORD are required in production with a transporter",
      "NATS_TLS_CA is required in production with a transporter (NATS over TLS)",
      "BUS_SIGNING_KEY is required in production with a transporter",
      "BUS_TRUSTED_KEYS is required in production with a transporter",
    ]);
    expect(loadConfig({ TRANSPORTER: "nats://127.0.0.1:4222" }).bus).toEqual({
      role: "dev",
      signingKey: null,
      trustedKeys: {},
    });
    const otherKey = publicKeyOfSeed(Buffer.alloc(32, 9).toString("base64url"));
    expect(() =>
      loadConfig({ BUS_ROLE: "gateway", BUS_SIGNING_KEY: SEED, BUS_TRUSTED_KEYS: `gateway:${otherKey}` }),
    ).toThrow(/BUS_TRUSTED_KEYS must list this node's role gateway with the public key of BUS_SIGNING_KEY/);
    expect(() => loadConfig({ BUS_SIGNING_KEY: "short", BUS_TRUSTED_KEYS: "gateway" })).toThrow(
      /BUS_SIGNING_KEY must be a 32-byte Ed25519 seed[\s\S]*BUS_TRUSTED_KEYS entry gateway is not role:publicKey/,
    );
  });

  it("collects every problem into one ConfigError", () => {
    let error: unknown;
    try {
      loadConfig({ PORT: "http", SERVICES: "api,billing", LOG_LEVEL: "loud", DATABASE_URL: "mysql://x/y" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems.join("\n")).toMatch(/PORT=http/);
    expect(problems.join("\n")).toMatch(/unknown services: billing/);
    expect(problems.join("\n")).toMatch(/LOG_LEVEL=loud/);
    expect(problems.join("\n")).toMatch(/DATABASE_URL must use postgres/);
  });

  it("refuses production without a database URL instead of starting the embedded one", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(/DATABASE_URL is required in production/);
    // The gateway keeps no data: its role is given no database URL at all.
    expect(() => loadConfig({ NODE_ENV: "production", SERVICES: "api" })).not.toThrow();
    expect(() =>
      loadConfig({ NODE_ENV: "production", SERVICES: "products", PRODUCTS_DATABASE_URL: "postgres://db/p" }),
    ).not.toThrow();
  });

  it("refuses production without AUTH_KEY_SECRET on a node that hosts auth, and short secrets anywhere", () => {
    const production = { NODE_ENV: "production", DATABASE_URL: "postgres://db/postgres" };
    expect(() => loadConfig({ ...production, SERVICES: "api,auth" })).toThrow(
      /AUTH_KEY_SECRET is required in production/,
    );
    expect(() => loadConfig({ ...production, SERVICES: "api,products" })).not.toThrow();
    expect(() => loadConfig({ AUTH_KEY_SECRET: "short" })).toThrow(/at least 32 characters/);
  });

  it("refuses production without AUDIT_ANCHOR_KEY on a node that hosts audit, and a short key anywhere", () => {
    const production = { NODE_ENV: "production", DATABASE_URL: "postgres://db/postgres" };
    expect(() => loadConfig({ ...production, SERVICES: "audit" })).toThrow(
      /AUDIT_ANCHOR_KEY is required in production/,
    );
    expect(loadConfig({ ...production, SERVICES: "audit", AUDIT_ANCHOR_KEY: "k".repeat(32) }).audit.anchorKey).toBe(
      "k".repeat(32),
    );
    expect(() => loadConfig({ ...production, SERVICES: "api,products" })).not.toThrow();
    expect(() => loadConfig({ AUDIT_ANCHOR_KEY: "short" })).toThrow(/AUDIT_ANCHOR_KEY must be at least 32/);
    expect(loadConfig({}).audit.anchorKey).toBeNull();
  });

  it("requires a collector endpoint for the zipkin exporter", () => {
    expect(() => loadConfig({ TRACING_EXPORTER: "zipkin" })).toThrow(/needs TRACING_ENDPOINT/);
    expect(loadConfig({ TRACING_EXPORTER: "zipkin", TRACING_ENDPOINT: "http://zipkin:9411" }).tracing).toEqual({
      exporters: ["zipkin"],
      endpoint: "http://zipkin:9411",
      sampleRate: 1,
      slowMs: 1000,
    });
  });

  it("takes several tracing exporters, or none, and refuses unknown ones", () => {
    const endpoint = "http://zipkin:9411";
    expect(loadConfig({ TRACING_EXPORTER: "zipkin, event", TRACING_ENDPOINT: endpoint }).tracing.exporters).toEqual([
      "event",
      "zipkin",
    ]);
    expect(loadConfig({ TRACING_EXPORTER: "none" }).tracing.exporters).toEqual([]);
    expect(() => loadConfig({ TRACING_EXPORTER: "jaeger" })).toThrow(/unknown exporters: jaeger/);
  });

  it("arms crash points for fault tests, never in production", () => {
    expect(loadConfig({ FAILPOINTS: "outbox.published:order.created, saga.committed:shipping" }).failpoints).toEqual([
      "outbox.published:order.created",
      "saga.committed:shipping",
    ]);
    expect(loadConfig({}).failpoints).toEqual([]);
    expect(() =>
      loadConfig({
        NODE_ENV: "production",
        DATABASE_URL: "postgres://u:p@db:5432/postgres",
        AUTH_KEY_SECRET: "x".repeat(32),
        ADMIN_PASSWORD: "a-long-admin-password",
        FAILPOINTS: "saga.committed:shipping",
      }),
    ).toThrow(/FAILPOINTS are for fault tests/);
  });

  it("documents the keys the issue names as the operators' interface", () => {
    const documented = CONFIG_KEYS.map((key) => key.key);
    for (const key of [
      "PORT",
      "METRICS_PORT",
      "TRANSPORTER",
      "SERVICES",
      "DATABASE_URL",
      "<SERVICE>_DATABASE_URL",
      "NODE_ENV",
      "LOG_LEVEL",
    ]) {
      expect(documented).toContain(key);
    }
  });
});

describe("the saga engine's lease settings", () => {
  it("default to a 10 s lease swept for every second, 64 actions at once, orders re-announced after 1 min", () => {
    expect(loadConfig({}).saga).toMatchObject({
      leaseMs: 10_000,
      sweepIntervalMs: 1000,
      concurrency: 64,
      stallAfterMs: 60_000,
    });
    expect(
      loadConfig({ SAGA_LEASE: "3000", SAGA_SWEEP_INTERVAL: "200", SAGA_CONCURRENCY: "8", SAGA_STALL_AFTER: "5000" })
        .saga,
    ).toMatchObject({ leaseMs: 3000, sweepIntervalMs: 200, concurrency: 8, stallAfterMs: 5000 });
  });

  it("refuse nonsense", () => {
    expect(() => loadConfig({ SAGA_LEASE: "10" })).toThrow(/SAGA_LEASE/);
    expect(() => loadConfig({ SAGA_CONCURRENCY: "0" })).toThrow(/SAGA_CONCURRENCY/);
    expect(() => loadConfig({ SAGA_STALL_AFTER: "0" })).toThrow(/SAGA_STALL_AFTER/);
    expect(() => loadConfig({ SAGA_SWEEP_INTERVAL: "soon" })).toThrow(/SAGA_SWEEP_INTERVAL/);
  });
});

describe("the README's configuration table", () => {
  it("is the table the schema yields (run `npm run docs:config` after changing a key)", () => {
    const readme = readFileSync(path.join(__dirname, "..", "..", "README.md"), "utf8");
    expect(tableIn(readme).table).toEqual(configTable());
  });

  it("lists every key once, with the default and description lib/config-schema.ts declares", () => {
    const keys = CONFIG_KEYS.map((key) => key.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(configTable()).toContain(
      "| `TRACING_SAMPLE_RATE` | 1 (0.1 in production) | Share of traces exported whole, from 0 to 1,",
    );
    expect(configTable()).toContain("| `DATABASE_NAME_PREFIX` | (empty) |");
  });
});
