/**
 * The order saga end to end over the cluster topology (issue 6): the bench starts its own `nats-server -js` and
 * three nodes, each its own OS process started as `npm start` starts one (`bin/start.ts`, logs at `warn`):
 * - `gateway`: api, auth, products, orders;
 * - `participants`: payments, shipping;
 * - `saga-node`: sagas.
 * All of them on one PostgreSQL server (`DATABASE_URL`, else the embedded one bench/run.ts starts), in databases
 * named with a random `bench_sg_<hex>_` prefix that are dropped at the end.
 *
 * The bench logs in as the admin, creates one product and places happy-path orders (`pm_card_ok`, shipped to DE)
 * with `POST /api/orders`; each order's saga reserves its stock, charges the payment, marks the order PAID, creates the
 * shipment, makes the reservation final, marks it SHIPPED, then COMPLETED, every step a call from the saga engine's
 * in-process executor followed by a checkpoint statement (before issue 15: a `saga.stepDue` command through the
 * sagas outbox and JetStream). Every order takes from the one product's stock: its row is as hot as a row
 * gets.
 * 1. warm-up: 40 orders at once, not measured;
 * 2. saturation: `BENCH_SAGA_INFLIGHT` (128) closed loops, each placing an order and waiting until its saga has ended
 *    (one query on the sagas database every 100 ms for all of them), for `BENCH_SAGA_SATURATION_SECONDS` (15);
 * 3. fixed rate: `BENCH_SAGA_RATE` orders per second (default: half the saturation rate just measured), open loop
 *    (each POST is sent at its scheduled time, whether or not earlier ones have finished), for `BENCH_SAGA_SECONDS`
 *    (25), then until every saga has ended.
 * sagas/s: completed sagas over first POST sent → last saga completed (the backlog drained); steady sagas/s: those
 * completed between the first completion and the last POST, over that time (the ramp-up and the drain left out).
 * End to end: the client's `Date.now()` just before the POST → the saga's last timeline entry (`saga_events.at`,
 * `clock_timestamp()`, written after the order's COMPLETED transition returned, in the transaction that finishes the
 * saga). PostgreSQL runs on this machine, so both are the same clock.
 * CPU: /proc/<pid>/stat (utime + stime) of the three nodes, nats-server and every `postgres` process, this process's
 * `process.cpuUsage()`, and the whole machine from /proc/stat, sampled at the start and the end of each phase.
 * Per saga (issue 15), over the fixed-rate phase: SQL statements (counted in each node by bench/count-statements.ts),
 * commits (pg_stat_database over the bench's databases, the bench's own polls taken out), JetStream publishes (stream
 * last_seq from nats-server's /jsz) and CPU ms; a quiet window before the phase measures the nodes' background, which
 * is taken out of the per-saga row.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Client } from "pg";
import type { ClusterHealth } from "../contracts/health";
import type { Order } from "../contracts/orders";
import { apiRequest, gatewayClient, login, orderBody } from "../support/api";
import { dropScopeDatabases } from "../support/nodes";
import { freePort, type NatsServer, startNats } from "../support/servers";
import { STATEMENT_COUNT_REQUEST, type StatementCounts } from "./statement-counts";

const ROOT = path.resolve(__dirname, "..");
const ADMIN = { email: "bench-sagas@aicunet.local", password: "bench-sagas-admin-password" };
const KEY_SECRET = "a-signing-key-secret-only-for-the-saga-bench-0123456789";
/** How often the bench asks the sagas database which of the waited-for sagas have ended. */
const POLL_MS = 100;
/** How long a phase's sagas may take to end after its last order was placed. */
const DRAIN_TIMEOUT_MS = 60_000;
const WARMUP_ORDERS = 40;
/**
 * A backend flushes its statistics to `pg_stat_database` at most once a second, and after a failed try (the shared
 * entry locked) up to 10 s later (PGSTAT_IDLE_INTERVAL in PostgreSQL 15): waiting this long before reading
 * xact_commit makes the counts include every transaction of the phase.
 */
const STATS_SETTLE_MS = 11_000;
/** The quiet window in which the background work (outbox relays, sweeps, health probes) is counted per second. */
const IDLE_WINDOW_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------------
// CPU accounting from /proc

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;

interface ProcInfo {
  comm: string;
  cmdline: string;
  /** utime + stime, in clock ticks, of every thread of the process. */
  ticks: number;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const open = stat.indexOf("(");
    const close = stat.lastIndexOf(")");
    // Fields after the command name, from field 3 (state): utime is field 14, stime field 15.
    const rest = stat.slice(close + 2).split(" ");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    return { comm: stat.slice(open + 1, close), cmdline, ticks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return undefined;
  }
}

/** Every process of the machine whose command is one of `comms`. */
function processesNamed(comms: string[]): Map<number, ProcInfo> {
  const found = new Map<number, ProcInfo>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProc(Number(entry));
    if (info && comms.includes(info.comm)) found.set(Number(entry), info);
  }
  return found;
}

/** The machine's CPU time from the first line of /proc/stat, in ticks. */
function machineTicks(): { total: number; idle: number; iowait: number; steal: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice already)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle, iowait, steal };
}

interface CpuSample {
  at: number;
  nodes: Map<string, number>;
  nats: number;
  postgres: Map<number, ProcInfo>;
  bench: NodeJS.CpuUsage;
  machine: ReturnType<typeof machineTicks>;
}

export interface CpuRow {
  what: string;
  /** CPU seconds per wall second. */
  cores: number;
}

export interface CpuReport {
  seconds: number;
  rows: CpuRow[];
  /** Busy share of the whole machine (not idle, not waiting for I/O), in cores. */
  machineBusy: number;
  machineIowait: number;
  machineSteal: number;
  /** What the machine did beyond the rows: the kernel, other people's processes. */
  other: number;
  cores: number;
}

class CpuMeter {
  constructor(
    private nodes: NodeChild[],
    private natsPort: number,
    private prefix: string,
  ) {}

  natsPid(): number | undefined {
    for (const [pid, info] of processesNamed(["nats-server"])) {
      if (` ${info.cmdline} `.includes(` -p ${this.natsPort} `)) return pid;
    }
    return undefined;
  }

  sample(): CpuSample {
    const pid = this.natsPid();
    return {
      at: performance.now(),
      nodes: new Map(this.nodes.map((node) => [node.name, readProc(node.child.pid!)?.ticks ?? 0])),
      nats: pid ? (readProc(pid)?.ticks ?? 0) : 0,
      postgres: processesNamed(["postgres"]),
      bench: process.cpuUsage(),
      machine: machineTicks(),
    };
  }

  report(before: CpuSample, after: CpuSample): CpuReport {
    const seconds = (after.at - before.at) / 1000;
    const cores = (ticks: number) => ticks / CLK_TCK / seconds;
    const rows: CpuRow[] = this.nodes.map((node) => ({
      what: `${node.name} (${node.services})`,
      cores: cores(after.nodes.get(node.name)! - before.nodes.get(node.name)!),
    }));
    rows.push({ what: "nats-server", cores: cores(after.nats - before.nats) });
    // A backend's command line names its database: the bench's backends carry the prefix.
    let ours = 0;
    let others = 0;
    for (const [pid, info] of after.postgres) {
      const used = info.ticks - (before.postgres.get(pid)?.ticks ?? 0);
      if (info.cmdline.includes(this.prefix)) ours += used;
      else others += used;
    }
    rows.push({ what: "postgres: backends of the bench's databases", cores: cores(ours) });
    rows.push({
      what: "postgres: its other processes (WAL writer, checkpointer, other databases…)",
      cores: cores(others),
    });
    const bench = process.cpuUsage(before.bench);
    rows.push({
      what: "bench process (load generator, completion poller)",
      cores: (bench.user + bench.system) / 1e6 / seconds,
    });
    const total = after.machine.total - before.machine.total;
    const share = (ticks: number) => (ticks / total) * cpus().length;
    const idle = after.machine.idle - before.machine.idle;
    const iowait = after.machine.iowait - before.machine.iowait;
    const machineBusy = share(total - idle - iowait);
    return {
      seconds,
      rows,
      machineBusy,
      machineIowait: share(iowait),
      machineSteal: share(after.machine.steal - before.machine.steal),
      other: machineBusy - rows.reduce((sum, row) => sum + row.cores, 0),
      cores: cpus().length,
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// What a saga costs: statements, commits, JetStream publishes, CPU

interface CostSample {
  at: number;
  statements: number;
  transactionControl: number;
  explicitCommits: number;
  /** xact_commit and xact_rollback of pg_stat_database, summed over the bench's databases. */
  commits: number;
  rollbacks: number;
  /** last_seq summed over every JetStream stream: the messages JetStream has stored since it started. */
  published: number;
  /** The bench's own queries (the saga watch), to take out of the commits. */
  benchQueries: number;
  nodeTicks: number;
  natsTicks: number;
  /** Backends connected to the bench's databases (their command line names the database), by pid. */
  postgres: Map<number, number>;
}

export interface SagaCost {
  sagas: number;
  statements: number;
  transactionControl: number;
  explicitCommits: number;
  commits: number;
  rollbacks: number;
  publishes: number;
  nodeCpuMs: number;
  natsCpuMs: number;
  postgresCpuMs: number;
}

interface JetStreamInfo {
  account_details?: { stream_detail?: { state: { last_seq: number } }[] }[];
}

/**
 * Counts, from outside the services, what the order saga costs: statements from bench/count-statements.ts inside
 * each node, commits from PostgreSQL's own pg_stat_database (exact, and no code in the services), publishes from the
 * NATS server's monitoring endpoint, CPU from /proc. Per saga = (busy window − the quiet window's rate × its length)
 * ÷ sagas completed, so that the background work of the nodes (outbox relays, sweeps, probes) is not charged to them.
 */
class CostMeter {
  constructor(
    private nodes: NodeChild[],
    private stats: Client,
    private natsMonitor: string,
    private natsPid: () => number | undefined,
    private watch: SagaWatch,
    private prefix: string,
  ) {}

  /**
   * CPU ticks of the backends of the bench's databases. A pool closes a connection idle for 10 s and its backend's
   * ticks go with it: read them as the phase ends, not after the wait for the statistics.
   */
  backends(): Map<number, number> {
    const postgres = new Map<number, number>();
    for (const [pid, info] of processesNamed(["postgres"])) {
      if (info.cmdline.includes(this.prefix)) postgres.set(pid, info.ticks);
    }
    return postgres;
  }

  async sample(postgres = this.backends()): Promise<CostSample> {
    const counts = await Promise.all(this.nodes.map((node) => node.statements()));
    const { rows } = await this.stats.query<{ commits: string; rollbacks: string }>(
      `SELECT coalesce(sum(xact_commit), 0) AS commits, coalesce(sum(xact_rollback), 0) AS rollbacks
         FROM pg_stat_database WHERE starts_with(datname, $1)`,
      [this.prefix],
    );
    const jsz = (await (await fetch(`${this.natsMonitor}/jsz?accounts=true&streams=true`)).json()) as JetStreamInfo;
    const published = (jsz.account_details ?? [])
      .flatMap((account) => account.stream_detail ?? [])
      .reduce((sum, stream) => sum + stream.state.last_seq, 0);
    const natsPid = this.natsPid();
    return {
      at: performance.now(),
      statements: counts.reduce((sum, c) => sum + c.statements, 0),
      transactionControl: counts.reduce((sum, c) => sum + c.transactionControl, 0),
      explicitCommits: counts.reduce((sum, c) => sum + c.explicitCommits, 0),
      commits: Number(rows[0].commits),
      rollbacks: Number(rows[0].rollbacks),
      published,
      benchQueries: this.watch.queries,
      nodeTicks: this.nodes.reduce((sum, node) => sum + (readProc(node.child.pid!)?.ticks ?? 0), 0),
      natsTicks: natsPid ? (readProc(natsPid)?.ticks ?? 0) : 0,
      postgres,
    };
  }

  /** `quiet` → `idle`: nothing placed; `idle` → `busy`: the measured orders placed and drained. */
  perSaga(
    quiet: CostSample,
    idle: CostSample,
    busy: CostSample,
    sagas: number,
  ): { perSaga: SagaCost; gross: SagaCost; idle: SagaCost } {
    const idleSeconds = (idle.at - quiet.at) / 1000;
    const busySeconds = (busy.at - idle.at) / 1000;
    const ticksMs = 1000 / CLK_TCK;
    const delta = (a: CostSample, b: CostSample): SagaCost => ({
      sagas: 0,
      statements: b.statements - a.statements,
      transactionControl: b.transactionControl - a.transactionControl,
      explicitCommits: b.explicitCommits - a.explicitCommits,
      commits: b.commits - a.commits - (b.benchQueries - a.benchQueries),
      rollbacks: b.rollbacks - a.rollbacks,
      publishes: b.published - a.published,
      nodeCpuMs: (b.nodeTicks - a.nodeTicks) * ticksMs,
      natsCpuMs: (b.natsTicks - a.natsTicks) * ticksMs,
      // A backend that ended between the samples takes its ticks with it (an undercount); one that started counts whole.
      postgresCpuMs:
        [...b.postgres].reduce((sum, [pid, ticks]) => sum + ticks - (a.postgres.get(pid) ?? 0), 0) * ticksMs,
    });
    const background = delta(quiet, idle);
    const busyDelta = delta(idle, busy);
    const keys = Object.keys(background).filter((key) => key !== "sagas") as (keyof Omit<SagaCost, "sagas">)[];
    const perSaga = { ...busyDelta, sagas };
    const gross = { ...busyDelta, sagas };
    const idlePerSecond = { ...background };
    for (const key of keys) {
      idlePerSecond[key] = background[key] / idleSeconds;
      gross[key] = busyDelta[key] / sagas;
      perSaga[key] = (busyDelta[key] - idlePerSecond[key] * busySeconds) / sagas;
    }
    return { perSaga, gross, idle: idlePerSecond };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Nodes

interface NodeChild {
  name: string;
  services: string;
  child: ChildProcess;
  exited: Promise<string>;
  output: () => string;
  /** The statements the node has sent so far, counted by bench/count-statements.ts inside it. */
  statements: () => Promise<StatementCounts>;
}

const COUNT_STATEMENTS = pathToFileURL(path.join(__dirname, "count-statements.ts")).href;

/** `bin/start.ts` as its own process, as `npm start` runs it; readiness is checked through the gateway. */
function startNode(name: string, services: string, env: Record<string, string>): NodeChild {
  // BENCH_CPU_PROF=<dir>: each node writes a V8 CPU profile there when it stops (`--cpu-prof`, not allowed in
  // NODE_OPTIONS), for finding where a saga's CPU goes.
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", "--import", COUNT_STATEMENTS, "bin/start.ts"], {
    cwd: ROOT,
    env: { ...process.env, ...env, SERVICES: services, NODE_ID: name },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<string>((resolve) => {
    child.once("close", (code, signal) => resolve(String(code ?? signal)));
  });
  const statements = () =>
    new Promise<StatementCounts>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not answer the statement count`)), 5000);
      child.once("message", (counts) => {
        clearTimeout(timer);
        resolve(counts as StatementCounts);
      });
      child.send(STATEMENT_COUNT_REQUEST);
    });
  return { name, services, child, exited, output: () => output, statements };
}

async function stopNode(node: NodeChild): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill("SIGTERM");
  const timer = setTimeout(() => node.child.kill("SIGKILL"), 5000);
  await node.exited;
  clearTimeout(timer);
}

/** Waits until the gateway's cluster view has every node up and ready. */
async function waitForCluster(base: string, nodes: NodeChild[], timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  const died = Promise.race(
    nodes.map((node) =>
      node.exited.then((code) => {
        throw new Error(`${node.name} exited (${code}) before the cluster was ready:\n${node.output()}`);
      }),
    ),
  );
  died.catch(() => undefined);
  while (Date.now() < deadline) {
    const probe = async () => {
      try {
        const res = await fetch(`${base}/api/health`);
        const health = (await res.json()) as ClusterHealth;
        const ready = (name: string) => health.nodes?.some((n) => n.nodeID === name && n.state === "up" && n.ready);
        last = JSON.stringify(health.nodes?.map((n) => [n.nodeID, n.state, n.ready]));
        return nodes.every((node) => ready(node.name));
      } catch (err) {
        last = (err as Error).message;
        return false;
      }
    };
    if (await Promise.race([probe(), died])) return;
    await Promise.race([sleep(250), died]);
  }
  throw new Error(`The cluster was not ready after ${timeoutMs} ms: ${last}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Orders and their sagas

interface Placed {
  orderId?: string;
  /** Date.now() just before the POST was sent. */
  sentAt: number;
  postMs: number;
  status: number;
}

class Gateway {
  constructor(
    readonly base: string,
    private token: string,
    private productId: string,
  ) {}

  async place(tag: string): Promise<Placed> {
    const sentAt = Date.now();
    const started = performance.now();
    try {
      const res = await apiRequest(this.base, this.token, "POST", "/api/orders", orderBody(this.productId, tag));
      const body = await res.text();
      const postMs = performance.now() - started;
      if (res.status !== 201) return { sentAt, postMs, status: res.status };
      return { orderId: (JSON.parse(body) as Order).id, sentAt, postMs, status: res.status };
    } catch {
      return { sentAt, postMs: performance.now() - started, status: 0 };
    }
  }
}

/** Resolves `ended(orderId)` once the order's saga has ended, from one query every POLL_MS for all waited ones. */
class SagaWatch {
  private waiting = new Map<string, () => void>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Queries sent so far: each is one committed transaction in the sagas database, not the services' doing. */
  queries = 0;

  constructor(private sagas: Client) {}

  start(): void {
    const round = async () => {
      if (this.waiting.size > 0) {
        this.queries += 1;
        const { rows } = await this.sagas.query<{ subject_id: string }>(
          `SELECT subject_id FROM sagas WHERE definition = 'order' AND subject_id = ANY($1)
             AND status IN ('COMPLETED', 'COMPENSATED', 'FAILED')`,
          [[...this.waiting.keys()]],
        );
        for (const { subject_id } of rows) {
          this.waiting.get(subject_id)?.();
          this.waiting.delete(subject_id);
        }
      }
    };
    const loop = () => {
      round()
        .catch((err: Error) => console.error(`saga watch: ${err.message}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, POLL_MS);
        });
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  ended(orderId: string): Promise<void> {
    return new Promise((resolve) => this.waiting.set(orderId, resolve));
  }

  get pending(): number {
    return this.waiting.size;
  }
}

/** Resolves with "timeout" after `ms`; its timer does not keep the process alive. */
const giveUpAfter = (ms: number) =>
  new Promise<"timeout">((resolve) => {
    setTimeout(() => resolve("timeout"), ms).unref();
  });

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank.
  const at = (q: number) => Math.round(sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN);
  return { p50: at(0.5), p99: at(0.99), max: Math.round(sorted[sorted.length - 1] ?? NaN) };
}

export interface PhaseResult {
  name: string;
  /** Orders per second offered (fixed rate) or sagas in flight (closed loop). */
  load: string;
  placed: number;
  postErrors: number;
  completed: number;
  /** Sagas of placed orders that ended otherwise, or had not ended when the bench gave up. */
  notCompleted: Record<string, number>;
  ordersCompleted: number;
  paymentsCharged: number;
  shipments: number;
  /** First POST sent → last saga completed. */
  seconds: number;
  sagasPerSecond: number;
  /** Sagas completed per second between the first completion and the last POST (the ramp-up and the drain left out). */
  steadySagasPerSecond: number;
  endToEnd: Percentiles;
  post: Percentiles;
  /** POST sent → the saga's first timeline entry (the POST, the orders outbox, JetStream, the sagas consumer). */
  toStart: Percentiles;
  /** The saga's first → last timeline entry (seven step commands through the sagas outbox and JetStream). */
  steps: Percentiles;
  /**
   * Of `steps`, the time spent in the seven actions (products.reserve, payments.charge, orders.transition ×3,
   * shipping.create, products.commitReservation).
   */
  actions: Percentiles;
  /** Of `steps`, the rest per step command: outbox row → relay round → JetStream → consumer transaction. */
  hop: Percentiles;
  /** The longest an open-loop POST went out after its scheduled time. */
  sendLagMs?: number;
  cpu: CpuReport;
}

interface Databases {
  sagas: Client;
  orders: Client;
  payments: Client;
  shipping: Client;
}

async function summarize(
  name: string,
  load: string,
  placedAll: Placed[],
  db: Databases,
  cpu: CpuReport,
  sendLagMs?: number,
): Promise<PhaseResult> {
  const placed = placedAll.filter((p) => p.orderId);
  const ids = placed.map((p) => p.orderId!);
  const { rows } = await db.sagas.query<{
    subject_id: string;
    status: string;
    started_ms: string;
    ended_ms: string;
    action_ms: string;
    events: string;
  }>(
    `SELECT s.subject_id, s.status,
       extract(epoch FROM min(e.at)) * 1000 AS started_ms,
       extract(epoch FROM max(e.at)) * 1000 AS ended_ms,
       coalesce(sum(e.duration_ms), 0) AS action_ms,
       count(*) AS events
     FROM sagas s JOIN saga_events e ON e.saga_id = s.id
     WHERE s.definition = 'order' AND s.subject_id = ANY($1)
     GROUP BY s.id`,
    [ids],
  );
  const byOrder = new Map(rows.map((row) => [row.subject_id, row]));
  const notCompleted: Record<string, number> = {};
  const endToEnd: number[] = [];
  const toStart: number[] = [];
  const steps: number[] = [];
  const actions: number[] = [];
  const hops: number[] = [];
  const ends: number[] = [];
  for (const p of placed) {
    const saga = byOrder.get(p.orderId!);
    const status = saga?.status ?? "NO SAGA";
    if (status !== "COMPLETED") {
      notCompleted[status] = (notCompleted[status] ?? 0) + 1;
      continue;
    }
    const started = Number(saga!.started_ms);
    const ended = Number(saga!.ended_ms);
    endToEnd.push(ended - p.sentAt);
    toStart.push(started - p.sentAt);
    steps.push(ended - started);
    actions.push(Number(saga!.action_ms));
    // Entries after `start`: one per step command the saga sent itself.
    hops.push((ended - started - Number(saga!.action_ms)) / (Number(saga!.events) - 1));
    ends.push(ended);
  }
  const count = async (client: Client, sql: string) =>
    Number((await client.query<{ n: string }>(sql, [ids])).rows[0].n);
  const firstSent = Math.min(...placedAll.map((p) => p.sentAt));
  const lastSent = Math.max(...placedAll.map((p) => p.sentAt));
  const firstEnd = Math.min(...ends);
  const seconds = (Math.max(...ends) - firstSent) / 1000;
  const steadyCount = ends.filter((end) => end >= firstEnd && end <= lastSent).length;
  return {
    name,
    load,
    placed: placedAll.length,
    postErrors: placedAll.length - placed.length,
    completed: endToEnd.length,
    notCompleted,
    ordersCompleted: await count(
      db.orders,
      "SELECT count(*) AS n FROM orders WHERE id = ANY($1::uuid[]) AND status = 'COMPLETED'",
    ),
    paymentsCharged: await count(
      db.payments,
      "SELECT count(DISTINCT order_id) AS n FROM payments WHERE order_id = ANY($1::uuid[]) AND status = 'CHARGED'",
    ),
    shipments: await count(
      db.shipping,
      "SELECT count(DISTINCT order_id) AS n FROM shipments WHERE order_id = ANY($1::uuid[]) AND status = 'CREATED'",
    ),
    seconds: Number(seconds.toFixed(2)),
    sagasPerSecond: Number((endToEnd.length / seconds).toFixed(1)),
    steadySagasPerSecond: Number((steadyCount / ((lastSent - firstEnd) / 1000)).toFixed(1)),
    endToEnd: percentiles(endToEnd),
    post: percentiles(placed.map((p) => p.postMs)),
    toStart: percentiles(toStart),
    steps: percentiles(steps),
    actions: percentiles(actions),
    hop: percentiles(hops),
    sendLagMs: sendLagMs === undefined ? undefined : Math.round(sendLagMs),
    cpu,
  };
}

/** `loops` closed loops, each placing an order and waiting for its saga to end, for `seconds`. */
async function closedLoop(gateway: Gateway, watch: SagaWatch, loops: number, seconds: number, tag: string) {
  const placed: Placed[] = [];
  const deadline = performance.now() + seconds * 1000;
  const giveUp = giveUpAfter(seconds * 1000 + DRAIN_TIMEOUT_MS);
  let n = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < deadline) {
        const p = await gateway.place(`${tag}-${n++}`);
        placed.push(p);
        if (!p.orderId) {
          await sleep(100);
          continue;
        }
        if ((await Promise.race([watch.ended(p.orderId), giveUp])) === "timeout") return;
      }
    }),
  );
  return placed;
}

/** Orders at `rate` per second for `seconds`, each sent at its time (open loop); resolves once their sagas ended. */
async function openLoop(gateway: Gateway, watch: SagaWatch, rate: number, seconds: number) {
  const count = Math.round(rate * seconds);
  const sends: Promise<Placed>[] = [];
  const ends: Promise<void>[] = [];
  let sendLagMs = 0;
  const start = performance.now() + 20;
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    sendLagMs = Math.max(sendLagMs, performance.now() - due);
    sends.push(
      gateway.place(`RATE-${i}`).then((p) => {
        if (p.orderId) ends.push(watch.ended(p.orderId));
        return p;
      }),
    );
  }
  const placed = await Promise.all(sends);
  await Promise.race([Promise.all(ends), giveUpAfter(DRAIN_TIMEOUT_MS)]);
  return { placed, sendLagMs };
}

// ---------------------------------------------------------------------------------------------------------------

export interface SagaBench {
  nodes: { name: string; services: string }[];
  natsVersion: string;
  postgresVersion: string;
  warmup: number;
  saturation: PhaseResult;
  fixed: PhaseResult;
  rateChosen: "BENCH_SAGA_RATE" | "half the saturation rate";
  /** The fixed-rate phase's cost per saga completed, and the nodes' background per second before it. */
  cost: { perSaga: SagaCost; gross: SagaCost; idle: SagaCost; idleSeconds: number };
}

/** `serverUrl`: a PostgreSQL server on which the bench may create (and drops) its own databases. */
export async function sagaBench(serverUrl: string): Promise<SagaBench> {
  const inflight = Number(process.env.BENCH_SAGA_INFLIGHT ?? 128);
  const saturationSeconds = Number(process.env.BENCH_SAGA_SATURATION_SECONDS ?? 15);
  const fixedSeconds = Number(process.env.BENCH_SAGA_SECONDS ?? 25);
  const id = randomBytes(4).toString("hex");
  const prefix = `bench_sg_${id}_`;
  const cleanups: (() => Promise<unknown>)[] = [];
  const t0 = performance.now();
  const run = async (): Promise<SagaBench> => {
    const natsMonitorPort = await freePort();
    const nats: NatsServer = await startNats(["-m", String(natsMonitorPort)]);
    cleanups.push(() => nats.stop());
    cleanups.push(() => dropScopeDatabases(prefix, serverUrl));
    const port = await freePort();
    const env = {
      NODE_ENV: "test",
      DATABASE_URL: serverUrl,
      DATABASE_NAME_PREFIX: prefix,
      NAMESPACE: `bench-sg-${id}`,
      TRANSPORTER: nats.url,
      METRICS_PORT: "0",
      LOG_LEVEL: "warn",
      LOG_FORMAT: "json",
      TRACING_EXPORTER: "none",
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      AUTH_KEY_SECRET: KEY_SECRET,
      RATE_LIMIT_IP: "10000000",
      RATE_LIMIT_USER: "10000000",
      RATE_LIMIT_AUTH: "10000000",
    };
    // Every node serves HTTP on PORT (the gateway its API, the others their health probes): one port each.
    const [participantsPort, sagaPort] = [await freePort(), await freePort()];
    const nodes = [
      startNode("gateway", "api,auth,products,orders", { ...env, PORT: String(port) }),
      startNode("participants", "payments,shipping", { ...env, PORT: String(participantsPort) }),
      startNode("saga-node", "sagas", { ...env, PORT: String(sagaPort) }),
    ];
    cleanups.push(() => Promise.all(nodes.map(stopNode)));
    const base = `http://127.0.0.1:${port}`;
    await waitForCluster(base, nodes);
    console.log(
      `saga bench: nats-server and ${nodes.length} nodes ready after ${f2((performance.now() - t0) / 1000)} s`,
    );

    const accessToken = await login(base, ADMIN);
    const product = await gatewayClient({ base, token: accessToken }).createProduct({
      sku: "SAGA-BENCH-1",
      name: "Saga bench widget",
      price: { amount: 700, currency: "EUR" },
      stock: 100_000_000,
    });
    const gateway = new Gateway(base, accessToken, product.id);

    const db = {} as Databases;
    for (const name of ["sagas", "orders", "payments", "shipping"] as const) {
      const url = new URL(serverUrl);
      url.pathname = `/${prefix}${name}`;
      db[name] = new Client({ connectionString: url.toString() });
      await db[name].connect();
      cleanups.push(() => db[name].end());
    }
    const watch = new SagaWatch(db.sagas);
    watch.start();
    cleanups.push(async () => watch.stop());
    const meter = new CpuMeter(nodes, nats.port, prefix);
    const stats = new Client({ connectionString: serverUrl });
    await stats.connect();
    cleanups.push(() => stats.end());
    const cost = new CostMeter(
      nodes,
      stats,
      `http://127.0.0.1:${natsMonitorPort}`,
      () => meter.natsPid(),
      watch,
      prefix,
    );

    // Warm-up: JIT, pools, streams and consumers, prepared caches.
    const warm = await Promise.all(Array.from({ length: WARMUP_ORDERS }, (_, i) => gateway.place(`WARMUP-${i}`)));
    await Promise.race([
      Promise.all(warm.filter((p) => p.orderId).map((p) => watch.ended(p.orderId!))),
      giveUpAfter(DRAIN_TIMEOUT_MS),
    ]);
    await sleep(1000);

    process.stdout.write(
      `warmed up after ${f2((performance.now() - t0) / 1000)} s; saturation: ${inflight} sagas in flight for ${saturationSeconds} s … `,
    );
    let before = meter.sample();
    const burst = await closedLoop(gateway, watch, inflight, saturationSeconds, "LOOP");
    let after = meter.sample();
    const saturation = await summarize(
      "closed loop (saturation)",
      `${inflight} sagas in flight`,
      burst,
      db,
      meter.report(before, after),
    );
    console.log(`${saturation.sagasPerSecond} sagas/s`);

    const rateFromEnv = process.env.BENCH_SAGA_RATE;
    const rate = rateFromEnv ? Number(rateFromEnv) : Math.max(1, Math.round(saturation.sagasPerSecond / 2));
    process.stdout.write(`counting the nodes' background for ${(IDLE_WINDOW_MS / 1000).toFixed(0)} s … `);
    await sleep(STATS_SETTLE_MS);
    const quiet = await cost.sample();
    await sleep(IDLE_WINDOW_MS);
    const idle = await cost.sample();
    process.stdout.write(`fixed rate: ${rate} orders/s for ${fixedSeconds} s … `);
    before = meter.sample();
    const { placed, sendLagMs } = await openLoop(gateway, watch, rate, fixedSeconds);
    after = meter.sample();
    const backendsAtEnd = cost.backends();
    await sleep(STATS_SETTLE_MS);
    const busy = await cost.sample(backendsAtEnd);
    const fixed = await summarize(
      "fixed rate (open loop)",
      `${rate} orders/s`,
      placed,
      db,
      meter.report(before, after),
      sendLagMs,
    );
    console.log(`${fixed.sagasPerSecond} sagas/s`);
    const perSaga = cost.perSaga(quiet, idle, busy, fixed.completed);

    const version = (await db.orders.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v;
    return {
      nodes: nodes.map(({ name, services }) => ({ name, services })),
      natsVersion: spawnSync("nats-server", ["--version"]).stdout.toString().trim(),
      postgresVersion: version,
      warmup: warm.length,
      saturation,
      fixed,
      rateChosen: rateFromEnv ? "BENCH_SAGA_RATE" : "half the saturation rate",
      cost: { ...perSaga, idleSeconds: (idle.at - quiet.at) / 1000 },
    };
  };
  try {
    return await run();
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: Error) => console.error(`saga bench cleanup: ${err.message}`));
    }
    console.log(`saga bench: stopped and cleaned up after ${f2((performance.now() - t0) / 1000)} s`);
  }
}

const f2 = (n: number) => n.toFixed(2);

export function reportSagas(result: SagaBench): void {
  const { saturation, fixed } = result;
  console.log(
    `\nOrder saga (issue 6): ${result.nodes.length} node processes ` +
      `(${result.nodes.map((n) => `${n.name}: ${n.services}`).join("; ")}), ${result.natsVersion}, ` +
      `PostgreSQL ${result.postgresVersion}; happy-path orders (pm_card_ok, DE), ${result.warmup} to warm up first`,
  );
  console.log(
    "| phase | load | orders placed | sagas completed | seconds | sagas/s | steady sagas/s | e2e p50 ms | e2e p99 ms | e2e max ms | POST p50 ms | POST p99 ms |\n" +
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of [saturation, fixed]) {
    console.log(
      `| ${r.name} | ${r.load} | ${r.placed} | ${r.completed} | ${r.seconds} | ${r.sagasPerSecond} | ${r.steadySagasPerSecond} | ` +
        `${r.endToEnd.p50} | ${r.endToEnd.p99} | ${r.endToEnd.max} | ${r.post.p50} | ${r.post.p99} |`,
    );
  }
  console.log(`fixed rate: ${fixed.load} (${result.rateChosen}), latest send ${fixed.sendLagMs} ms after its time`);
  console.log("\nWhere the end-to-end time goes (p50 / p99 ms):");
  console.log(
    "| phase | POST sent → saga started | saga started → completed | of which in the seven actions | per step command, beside its action |",
  );
  console.log("|---|---|---|---|---|");
  for (const r of [saturation, fixed]) {
    console.log(
      `| ${r.name} | ${r.toStart.p50} / ${r.toStart.p99} | ${r.steps.p50} / ${r.steps.p99} | ` +
        `${r.actions.p50} / ${r.actions.p99} | ${r.hop.p50} / ${r.hop.p99} |`,
    );
  }
  const { perSaga, gross, idle, idleSeconds } = result.cost;
  const f1 = (n: number) => n.toFixed(1);
  console.log(
    `\nPer saga (issue 15), over the fixed-rate phase's ${perSaga.sagas} completed sagas (POST → COMPLETED, all three ` +
      `nodes), the nodes' background (${f2(idleSeconds)} s quiet before) taken out:`,
  );
  console.log(
    "| | SQL statements | of which BEGIN/COMMIT/… | explicit COMMITs | commits (pg_stat_database) | rollbacks | JetStream publishes | CPU ms nodes | CPU ms nats-server | CPU ms postgres backends |\n" +
      "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const [what, c] of [
    ["**per saga**", perSaga],
    ["per saga, background left in", gross],
    ["background per second", idle],
  ] as const) {
    console.log(
      `| ${what} | ${f1(c.statements)} | ${f1(c.transactionControl)} | ${f1(c.explicitCommits)} | ${f1(c.commits)} | ${f1(c.rollbacks)} | ` +
        `${f1(c.publishes)} | ${f1(c.nodeCpuMs)} | ${f1(c.natsCpuMs)} | ${f1(c.postgresCpuMs)} |`,
    );
  }
  console.log("\nChecks (orders placed in the phase):");
  for (const r of [saturation, fixed]) {
    const others = Object.entries(r.notCompleted)
      .map(([status, n]) => `${n} ${status}`)
      .join(", ");
    console.log(
      `- ${r.name}: ${r.placed} POSTs, ${r.postErrors} not 201; sagas COMPLETED ${r.completed}` +
        `${others ? ` (not completed: ${others})` : ", none other"}; orders COMPLETED ${r.ordersCompleted}; ` +
        `orders with a CHARGED payment ${r.paymentsCharged}; orders with a shipment ${r.shipments}`,
    );
  }
  for (const r of [saturation, fixed]) {
    const { cpu } = r;
    console.log(`\nCPU during ${r.name}, ${f2(cpu.seconds)} s, in cores (of ${cpu.cores}):`);
    console.log("| process | cores |\n|---|---|");
    for (const row of cpu.rows) console.log(`| ${row.what} | ${f2(row.cores)} |`);
    console.log(`| rest of the machine (kernel, other processes) | ${f2(cpu.other)} |`);
    console.log(
      `| **machine busy (/proc/stat)** | **${f2(cpu.machineBusy)}** (${Math.round((cpu.machineBusy / cpu.cores) * 100)} %; ` +
        `iowait ${f2(cpu.machineIowait)}, steal ${f2(cpu.machineSteal)}) |`,
    );
    if (cpu.other > 0.2) {
      console.log(`note: ${f2(cpu.other)} cores went to other processes during this phase; the machine was not quiet`);
    }
  }
}
