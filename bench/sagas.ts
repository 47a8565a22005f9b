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
 *
 * This file runs the phases; the parts live beside it: bench/saga-nodes.ts (the node processes), bench/saga-load.ts
 * (placing orders, waiting for their sagas), bench/saga-phase.ts (a phase's figures from the databases),
 * bench/saga-cpu.ts and bench/saga-cost.ts (CPU, and the cost per saga), bench/saga-report.ts (the tables).
 */
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "pg";
import { gatewayClient, login } from "../support/api";
import { dropScopeDatabases } from "../support/nodes";
import { freePort, type NatsServer, startNats } from "../support/servers";
import { CostMeter, type SagaCost } from "./saga-cost";
import { CpuMeter } from "./saga-cpu";
import { closedLoop, DRAIN_TIMEOUT_MS, Gateway, giveUpAfter, openLoop, SagaWatch } from "./saga-load";
import { startSagaNode, stopSagaNode, waitForCluster } from "./saga-nodes";
import { summarize, type Databases, type PhaseResult } from "./saga-phase";

const ADMIN = { email: "bench-sagas@aicunet.local", password: "bench-sagas-admin-password" };
const KEY_SECRET = "a-signing-key-secret-only-for-the-saga-bench-0123456789";
const WARMUP_ORDERS = 40;
/**
 * A backend flushes its statistics to `pg_stat_database` at most once a second, and after a failed try (the shared
 * entry locked) up to 10 s later (PGSTAT_IDLE_INTERVAL in PostgreSQL 15): waiting this long before reading
 * xact_commit makes the counts include every transaction of the phase.
 */
const STATS_SETTLE_MS = 11_000;
/** The quiet window in which the background work (outbox relays, sweeps, health probes) is counted per second. */
const IDLE_WINDOW_MS = 10_000;

/** Seconds since `t0`, for the progress lines. */
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(2);

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
    const nodes = await Promise.all([
      startSagaNode("gateway", "api,auth,products,orders", { ...env, PORT: String(port) }),
      startSagaNode("participants", "payments,shipping", { ...env, PORT: String(participantsPort) }),
      startSagaNode("saga-node", "sagas", { ...env, PORT: String(sagaPort) }),
    ]);
    cleanups.push(() => Promise.all(nodes.map(stopSagaNode)));
    const base = `http://127.0.0.1:${port}`;
    await waitForCluster(base, nodes);
    console.log(`saga bench: nats-server and ${nodes.length} nodes ready after ${seconds(t0)} s`);

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
      `warmed up after ${seconds(t0)} s; saturation: ${inflight} sagas in flight for ${saturationSeconds} s … `,
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
    console.log(`saga bench: stopped and cleaned up after ${seconds(t0)} s`);
  }
}
