/**
 * The audit trail's overhead on a REST write (issue 7, audit part): the same `PATCH /api/products/:id` (a new `name`,
 * with the product's current version as `If-Match`; no stock change, so no domain event, only the action's audit
 * record) through the gateway, with the audit trail OFF and then ON, the same load, one after the other in one run.
 * - `audit-off`: a node (bench/targets.ts) with api, auth and products, the broker's middlewares without the Audit
 *   middleware, no audit service;
 * - `audit-on`: the same node as `npm start` builds it, with the audit service too: every successful PATCH publishes
 *   an `audit.recorded` message to JetStream before it answers, and the audit service (same process) chains it into
 *   its database.
 * Both nodes are their own OS process on a NATS transporter (the `nats-server -js` this bench starts) and PostgreSQL
 * (`DATABASE_URL`, else the embedded one bench/run.ts starts), in databases with a random `bench_au_<hex>_` prefix that
 * are dropped at the end. autocannon (in this process) sends the PATCHes as the admin: each of the
 * 2 × connections products is written by one request at a time, so no write meets a stale version.
 * After the ON run the bench waits for the audit service to catch up and checks one `products.update` record per
 * write committed in the products database, then asks `GET /api/audit/verify` whether the chain is valid.
 * CPU during the measured run: the node process (utime + stime from /proc/<pid>/stat) and the whole machine's busy
 * time (/proc/stat: not idle, not waiting for I/O), in cores.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { Client } from "pg";
import type { ChainVerdict } from "../contracts/audit";
import { gatewayClient, login } from "../support/api";
import { dropScopeDatabases } from "../support/nodes";
import { startNats } from "../support/servers";
import type { RateResult } from "./data";
import { startTarget } from "./target-process";

const ADMIN = { email: "bench@aicunet.local", password: "bench-admin-password" };
const AUDITED_ACTION = "products.update";
/** How long the audit service may take to record the last writes after the load stopped. */
const DRAIN_TIMEOUT_MS = 60_000;
const WARMUP_SECONDS = 2;

export interface AuditRun extends RateResult {
  /** Responses 2xx seen, warm-up included. */
  ok: number;
  /** Updates committed in the products database during warm-up and measured run (the sum of the versions' growth). */
  committed: number;
  /** CPU seconds per wall second of the node process during the measured run. */
  nodeCpu: number;
  /** Busy cores of the whole machine during the measured run (/proc/stat). */
  machineBusy: number;
}

export interface AuditBench {
  off: AuditRun;
  on: AuditRun;
  products: number;
  connections: number;
  seconds: number;
  check: AuditCheck;
}

export interface AuditCheck {
  /** `products.update` records when the load stopped, and in the end. */
  recordsWhenLoadStopped: number;
  records: number;
  /** From the end of the load until the records reached the committed writes; null if they did not in time. */
  drainSeconds: number | null;
  verify: ChainVerdict;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

function machineTicks(): { total: number; idle: number } {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync("/proc/stat", "utf8")
    .split("\n")[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait };
}

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;

function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * PATCH requests for autocannon over a pool of products: a request takes a product and its current version from the
 * pool, the answer puts it back with the new version (or the current one a 409 names). A product is never in two
 * requests at once, so the writes never conflict.
 */
class PatchLoad {
  ok = 0;
  private free: { id: string; version: number }[] = [];
  private sent = 0;
  private lastWritten = { id: "", version: 0 };

  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  /** Refills the pool from the database: requests cut off at the end of a run never put their product back. */
  refill(rows: { id: string; version: number }[]): void {
    this.free = rows.map((row) => ({ id: row.id, version: Number(row.version) }));
    this.lastWritten = this.free[0];
  }

  options(connections: number, duration: number): autocannon.Options {
    return {
      url: this.base,
      connections,
      duration,
      method: "PATCH",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.token}` },
      requests: [
        {
          setupRequest: (request) => {
            // Only requests cut off by a timeout lose their product; should all be lost, reuse one (it may conflict).
            const product = this.free.pop() ?? { ...this.lastWritten };
            return {
              ...request,
              path: `/api/products/${product.id}`,
              headers: { ...request.headers, "if-match": `"${product.version}"` },
              body: JSON.stringify({ name: `Bench product, revision ${++this.sent}` }),
            };
          },
          onResponse: (status, body) => {
            let answer: { id?: string; version?: number; data?: { id?: string; currentVersion?: number } };
            try {
              answer = JSON.parse(body) as typeof answer;
            } catch {
              return;
            }
            if (status === 200 && answer.id && answer.version !== undefined) {
              this.ok++;
              this.lastWritten = { id: answer.id, version: answer.version };
              this.free.push(this.lastWritten);
            } else if (answer.data?.id && answer.data.currentVersion !== undefined) {
              this.free.push({ id: answer.data.id, version: answer.data.currentVersion });
            }
          },
        },
      ],
    };
  }
}

/** Counts the `products.update` records in the audit database of the ON node. */
async function auditCounter(url: string) {
  const client = new Client({ connectionString: url });
  await client.connect();
  return {
    count: async () =>
      Number(
        (await client.query<{ n: string }>("SELECT count(*) AS n FROM audit_records WHERE name = $1", [AUDITED_ACTION]))
          .rows[0].n,
      ),
    end: () => client.end(),
  };
}

/**
 * One target: start its node, seed the products, warm up, measure. For `audit-on`, then wait until the audit service
 * has a record of every committed write (or gives up after DRAIN_TIMEOUT_MS) and ask for the chain's verification.
 */
async function measureTarget(
  mode: "audit-on" | "audit-off",
  env: Record<string, string>,
  connections: number,
  seconds: number,
  productCount: number,
): Promise<{ run: AuditRun; check?: AuditCheck }> {
  const node = await startTarget(mode, env);
  const products = new Client({
    connectionString: databaseUrl(env.DATABASE_URL, `${env.DATABASE_NAME_PREFIX}products`),
  });
  let audit: Awaited<ReturnType<typeof auditCounter>> | undefined;
  try {
    const token = await login(node.base, ADMIN);
    const gateway = gatewayClient({ base: node.base, token });
    for (let i = 0; i < productCount; i++) {
      await gateway.createProduct({
        sku: `BENCH-AU-${i}`,
        name: `Bench product ${i}`,
        price: { amount: 100 + i, currency: "EUR" },
        stock: 1000,
      });
    }
    await products.connect();
    if (mode === "audit-on")
      audit = await auditCounter(databaseUrl(env.DATABASE_URL, `${env.DATABASE_NAME_PREFIX}audit`));
    const rows = async () =>
      (await products.query<{ id: string; version: number }>("SELECT id, version FROM products")).rows;
    const versions = async () =>
      Number((await products.query<{ n: string }>("SELECT sum(version) AS n FROM products")).rows[0].n);
    // Requests cut off when autocannon stops may still commit: the sum of the versions once it stops moving.
    const settled = async () => {
      let last = await versions();
      for (;;) {
        await sleep(300);
        const now = await versions();
        if (now === last) return now;
        last = now;
      }
    };

    const load = new PatchLoad(node.base, token);
    const before = await versions();
    load.refill(await rows());
    await autocannon(load.options(connections, WARMUP_SECONDS));
    await settled();
    load.refill(await rows());
    const cpu = processTicks(node.pid);
    const machine = machineTicks();
    const started = performance.now();
    const result = await autocannon(load.options(connections, seconds));
    const loadStopped = performance.now();
    const elapsed = (loadStopped - started) / 1000;
    const used = machineTicks();
    const nodeCpu = (processTicks(node.pid) - cpu) / CLK_TCK / elapsed;
    const recordsWhenLoadStopped = await audit?.count();
    const committed = (await settled()) - before;
    const run: AuditRun = {
      target: mode,
      requestsPerSecond: Math.round(result.requests.average),
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors + result.non2xx,
      ok: load.ok,
      committed,
      nodeCpu: Number(nodeCpu.toFixed(2)),
      machineBusy: Number(((used.total - machine.total - (used.idle - machine.idle)) / CLK_TCK / elapsed).toFixed(2)),
    };
    if (!audit) return { run };

    let records = recordsWhenLoadStopped!;
    let drainSeconds: number | null = null;
    while (performance.now() - loadStopped < DRAIN_TIMEOUT_MS) {
      records = await audit.count();
      if (records >= committed) {
        drainSeconds = Number(((performance.now() - loadStopped) / 1000).toFixed(2));
        break;
      }
      await sleep(100);
    }
    // Time for duplicates to show, if there were any.
    await sleep(500);
    records = await audit.count();
    const res = await fetch(`${node.base}/api/audit/verify`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`GET /api/audit/verify: ${res.status} ${await res.text()}`);
    const verify = (await res.json()) as ChainVerdict;
    return { run, check: { recordsWhenLoadStopped: recordsWhenLoadStopped!, records, drainSeconds, verify } };
  } finally {
    await audit?.end().catch(() => undefined);
    await products.end().catch(() => undefined);
    await node.stop();
  }
}

/** OFF, then ON, on one nats-server started for the run; `env` is bench/run.ts's database environment. */
export async function auditBench(env: Record<string, string>, connections: number, seconds: number) {
  const id = randomBytes(4).toString("hex");
  const scope = `bench_au_${id}_`;
  const productCount = 2 * connections;
  const nats = await startNats();
  // The generated signing-key secret goes here, not into bench/run.ts's DATA_DIR, which outlives a DATABASE_URL run.
  const dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-bench-audit-"));
  try {
    const common = {
      ...env,
      DATA_DIR: dataDir,
      TRANSPORTER: nats.url,
      NAMESPACE: `bench-au-${id}`,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
    };
    const target = (mode: "audit-on" | "audit-off", prefix: string) =>
      measureTarget(
        mode,
        { ...common, DATABASE_NAME_PREFIX: `${scope}${prefix}_`, NODE_ID: `bench-${mode}-${id}` },
        connections,
        seconds,
        productCount,
      );
    const { run: off } = await target("audit-off", "off");
    const { run: on, check } = await target("audit-on", "on");
    return { off, on, products: productCount, connections, seconds, check: check! } satisfies AuditBench;
  } finally {
    await nats.stop();
    await rm(dataDir, { recursive: true, force: true });
    await dropScopeDatabases(scope, env.DATABASE_URL).catch((err: Error) =>
      console.error(`audit bench cleanup: ${err.message}`),
    );
  }
}

export function reportAudit(result: AuditBench): void {
  const { off, on, check } = result;
  console.log(
    `\nAudit overhead on a REST write (issue 7): PATCH /api/products/:id (name, If-Match) as the admin, ` +
      `${result.connections} connections over ${result.products} products, ${WARMUP_SECONDS} s warm-up + ` +
      `${result.seconds} s each, audit OFF then ON`,
  );
  console.log(
    "| target | req/s | p50 ms | p99 ms | errors | node CPU (cores) | machine busy (cores) |\n|---|---|---|---|---|---|---|",
  );
  for (const r of [off, on]) {
    console.log(
      `| ${r.target} | ${r.requestsPerSecond} | ${r.p50} | ${r.p99} | ${r.errors} | ${r.nodeCpu} | ${r.machineBusy} |`,
    );
  }
  console.log(`ratio audit-on / audit-off throughput: ${(on.requestsPerSecond / off.requestsPerSecond).toFixed(3)}`);
  const drained =
    check.drainSeconds === null
      ? `not caught up after ${DRAIN_TIMEOUT_MS / 1000} s`
      : `caught up ${check.drainSeconds} s after the load stopped, appending ` +
        `${Math.round((on.committed - check.recordsWhenLoadStopped) / check.drainSeconds)} records/s meanwhile`;
  console.log(
    `audit-on: ${on.committed} updates committed (warm-up included; ${on.ok} 2xx answers seen), ` +
      `${check.records} ${AUDITED_ACTION} audit records (${check.recordsWhenLoadStopped} when the load stopped, ` +
      `${drained}): ${check.records === on.committed ? "one per write" : "MISMATCH"}`,
  );
  console.log(
    `GET /api/audit/verify: ${JSON.stringify(check.verify)}; audit-off: ${off.committed} updates committed ` +
      `(${off.ok} 2xx answers seen)`,
  );
}
