/**
 * The sagas service's leases and sweeper. The engine holds each saga it runs for SAGA_LEASE and renews all its leases
 * in one statement every third of that. Every SAGA_SWEEP_INTERVAL it takes over the moving sagas no engine holds
 * (`sweepUnowned`), so a saga whose node died resumes on another. Stopping ends the sweep, lets the executor finish,
 * and hands the leases back for another engine's next sweep.
 */
import type { Service, ServiceSchema } from "moleculer";
import { cursorName } from "../lib/saga";
import type { SagaEngineMethods, SagaEngineState } from "../lib/saga-engine";
import { runningOf, toSaga, type SagaRow } from "../lib/saga-rows";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** Sagas one sweep takes over; the next sweep takes the rest. */
const SWEEP_BATCH = 200;

export type SagaLeaseMethods = {
  renewLeases(): Promise<void>;
  sweepUnowned(): Promise<number>;
};

interface SagaLeaseState {
  leaseTimer?: NodeJS.Timeout;
  sweepTimer?: NodeJS.Timeout;
  /** The sweep in progress, which stopping waits for: the database closes right after. */
  sweepRound?: Promise<void>;
  sweepStopping: boolean;
}

type LeasesThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  SagaEngineState &
  SagaEngineMethods &
  SagaLeaseState &
  SagaLeaseMethods;

const methods: SagaLeaseMethods = {
  /** One statement renews the lease of every saga this engine runs. */
  async renewLeases(this: LeasesThis) {
    const ids = this.executor.ids();
    if (ids.length === 0) return;
    await this.rows(
      `UPDATE sagas SET lease_until = now() + make_interval(secs => $3 / 1000.0)
       WHERE id = ANY($2::uuid[]) AND lease_owner = $1 RETURNING id`,
      [this.leaseOwner, ids, this.settings.config.saga.leaseMs],
    );
  },

  /**
   * One sweep: takes over, `FOR UPDATE SKIP LOCKED` (several engines sweep at once without taking the same
   * saga), the moving sagas of the definitions this node knows that no engine holds, longest unheld first, and
   * runs them. A lease that ran out (its engine died or stalled) leaves a `swept` entry in the timeline; one
   * released by a stopping engine, or never taken (a saga from before leases), is taken quietly.
   * Returns how many it took.
   */
  async sweepUnowned(this: LeasesThis) {
    const { leaseMs } = this.settings.config.saga;
    const taken = await this.sequelize.transaction(async (transaction) => {
      const rows = await this.rows<SagaRow & { previous_owner: string | null; idle_ms: number }>(
        `WITH unheld AS (
           SELECT id, lease_owner, lease_until FROM sagas
           WHERE status IN ('RUNNING', 'COMPENSATING') AND (lease_until IS NULL OR lease_until < now())
             AND definition = ANY($3::text[])
           ORDER BY lease_until NULLS FIRST LIMIT $2 FOR UPDATE SKIP LOCKED
         )
         UPDATE sagas s SET lease_owner = $1, lease_until = now() + make_interval(secs => $4 / 1000.0),
           version = s.version + 1
         FROM unheld u WHERE s.id = u.id
         RETURNING s.*, u.lease_owner AS previous_owner,
           (extract(epoch FROM now() - u.lease_until) * 1000)::float8 AS idle_ms`,
        [this.leaseOwner, SWEEP_BATCH, Object.keys(this.definitions), leaseMs],
        { transaction },
      );
      const expired = rows.filter((row) => row.previous_owner !== null);
      if (expired.length > 0) {
        await this.rows(
          `INSERT INTO saga_events (saga_id, step, attempt, outcome, message)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[])`,
          [
            expired.map((row) => row.id),
            expired.map((row) => cursorName(this.definition(row.definition), row.cursor)),
            expired.map((row) => row.cursor.attempt),
            expired.map(() => "swept"),
            expired.map(
              (row) =>
                `the lease of ${row.previous_owner} ran out ${Math.round(row.idle_ms / 1000)} s ago: taken over by ${this.leaseOwner}`,
            ),
          ],
          { transaction },
        );
      }
      return { rows, expired };
    });
    for (const row of taken.expired) {
      this.broker.metrics.increment("aicunet.sagas.swept", { definition: row.definition });
      this.logger.warn(
        `Saga ${row.id} at ${toSaga(row, this.definitions).step}: ${row.previous_owner}'s lease ran out; taken over`,
      );
    }
    for (const row of taken.rows) this.executor.adopt(runningOf(row));
    return taken.rows.length;
  },
};

export function sagaLeasesMixin(): Partial<ServiceSchema> {
  const schema: Partial<
    ServiceSchema<
      DbSettings,
      DbMethods & SagaEngineMethods & SagaLeaseMethods,
      DbServiceThis & SagaEngineState & SagaLeaseState
    >
  > = {
    async started() {
      const { sweepIntervalMs, leaseMs } = this.settings.config.saga;
      this.leaseTimer = setInterval(
        () => this.renewLeases().catch((err: Error) => this.logger.warn(`Saga leases not renewed: ${err.message}`)),
        Math.max(100, Math.floor(leaseMs / 3)),
      );
      this.sweepStopping = false;
      const sweep = async () => {
        try {
          let taken = SWEEP_BATCH;
          // A full batch: more may be waiting, so the next one follows at once.
          while (taken === SWEEP_BATCH && !this.sweepStopping) taken = await this.sweepUnowned();
        } catch (err) {
          this.logger.warn(`Saga sweep: ${(err as Error).message}; trying again in ${sweepIntervalMs} ms`);
        }
        if (!this.sweepStopping) this.sweepTimer = setTimeout(schedule, sweepIntervalMs);
      };
      const schedule = () => {
        this.sweepRound = sweep();
      };
      // At once: the sagas a stopped node released, or that ran here before a restart, wait for no one.
      schedule();
    },

    async stopped() {
      this.sweepStopping = true;
      clearTimeout(this.sweepTimer);
      await this.sweepRound;
      await this.executor.stop();
      clearInterval(this.leaseTimer);
      // Handed back, not left to run out: another engine takes them at its next sweep.
      await this.rows("UPDATE sagas SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 RETURNING id", [
        this.leaseOwner,
      ]).catch((err: Error) => this.logger.warn(`Saga leases not released (they run out instead): ${err.message}`));
    },

    methods,
  };
  return schema as Partial<ServiceSchema>;
}
