/**
 * What one order saga costs, from outside the services: SQL statements, commits, JetStream publishes and CPU, counted
 * over a busy window with the nodes' background of a quiet window before it taken out.
 */
import type { Client } from "pg";
import { CLK_TCK, processesNamed, readProc } from "./saga-cpu";
import type { SagaWatch } from "./saga-load";
import type { SagaNode } from "./saga-nodes";

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
export class CostMeter {
  constructor(
    private nodes: SagaNode[],
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
      nodeTicks: this.nodes.reduce((sum, node) => sum + (readProc(node.process.child.pid!)?.ticks ?? 0), 0),
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
