/**
 * The sagas service's moves made outside the executor: an operator's `retry` of a parked saga and `compensate` of a
 * running one, and the take-over both share with a parked saga's dead letter replayed (mixins/saga-consumers.mixin.ts).
 * Each locks the saga's row, writes its new state and timeline entry, takes the lease whoever held it, and runs the
 * saga on this node once committed.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import type { Saga, StoredContext } from "../contracts/sagas";
import { ConflictError, NotFoundError } from "../lib/errors";
import { abandon, cursorName, resume, type Decision, type SagaDefinition, type SagaState } from "../lib/saga";
import type { SagaEngineMethods, SagaEngineState } from "../lib/saga-engine";
import type { TimelineEntry } from "../lib/saga-executor";
import { runningOf, stateOf, toSaga, type SagaRow } from "../lib/saga-rows";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { storableJson } from "../lib/storable";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

export type SagaOperatorMethods = {
  lockSaga(id: string, transaction: Transaction): Promise<SagaRow | undefined>;
  takeOver(row: SagaRow, decision: Decision, entry: TimelineEntry, transaction: Transaction): Promise<void>;
  operatorMove(
    id: string,
    move: (definition: SagaDefinition<StoredContext>, state: SagaState) => Decision | string,
    outcome: string,
  ): Promise<Saga>;
};

type OperatorThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  SagaEngineState &
  SagaEngineMethods &
  SagaOperatorMethods;

const methods: SagaOperatorMethods = {
  async lockSaga(this: OperatorThis, id: string, transaction: Transaction) {
    const [row] = await this.rows<SagaRow>("SELECT * FROM sagas WHERE id = $1 FOR UPDATE", [id], { transaction });
    return row;
  },

  /**
   * A move made outside the executor (an operator's, a dead letter's replay), on a row locked in `transaction`:
   * the new state and its timeline entry, the lease taken by this engine whoever held it (its next checkpoint
   * finds the version moved and lets the saga go), and this engine drives it from there once committed.
   */
  async takeOver(this: OperatorThis, row: SagaRow, decision: Decision, entry: TimelineEntry, transaction: Transaction) {
    const { status, cursor, completed, reason } = decision.state;
    const [moved] = await this.rows<SagaRow>(
      `WITH moved AS (
         UPDATE sagas SET status = $2, cursor = $3, completed = $4, reason = $5, version = version + 1,
           updated_at = now(), due_at = now() + make_interval(secs => $6 / 1000.0),
           lease_owner = $7, lease_until = now() + make_interval(secs => $8 / 1000.0)
         WHERE id = $1 RETURNING *
       ), logged AS (
         INSERT INTO saga_events (saga_id, step, attempt, outcome, message) SELECT id, $9, $10, $11, $12 FROM moved
       )
       SELECT * FROM moved`,
      [
        row.id,
        status,
        storableJson(cursor),
        completed,
        reason,
        decision.next?.delayMs ?? 0,
        this.leaseOwner,
        this.settings.config.saga.leaseMs,
        entry.step,
        entry.attempt,
        entry.outcome,
        entry.message,
      ],
      { transaction },
    );
    transaction.afterCommit(() => this.executor.adopt(runningOf(moved)));
  },

  /** An operator's move on a saga, applied like any transition: state and timeline together, then run here. */
  async operatorMove(
    this: OperatorThis,
    id: string,
    move: (definition: SagaDefinition<StoredContext>, state: SagaState) => Decision | string,
    outcome: string,
  ) {
    await this.sequelize.transaction(async (transaction) => {
      const row = await this.lockSaga(id, transaction);
      if (!row) throw new NotFoundError("Saga", id);
      const decision = move(this.definition(row.definition), stateOf(row));
      if (typeof decision === "string") {
        throw new ConflictError(`Saga ${id} is ${row.status}: ${decision}`, "CONFLICT", { id, status: row.status });
      }
      const step = cursorName(this.definition(row.definition), decision.state.cursor);
      await this.takeOver(
        row,
        decision,
        { step, attempt: decision.state.cursor.attempt, outcome, message: "by an operator", durationMs: null },
        transaction,
      );
    });
    this.logger.warn(`Saga ${id} ${outcome} by an operator`);
    const [row] = await this.rows<SagaRow>("SELECT * FROM sagas WHERE id = $1", [id]);
    return toSaga(row, this.definitions);
  },
};

const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });

export function sagaOperatorMixin(): Partial<ServiceSchema> {
  const schema: Partial<
    ServiceSchema<DbSettings, DbMethods & SagaEngineMethods & SagaOperatorMethods, DbServiceThis & SagaEngineState>
  > = {
    actions: {
      /** Resumes a parked (FAILED) saga at the action it stopped at, from its first attempt; 409 otherwise. `sagas:retry`. */
      retry: {
        audit: { entity: "saga" },
        rest: "POST /:id/retry",
        permissions: ["sagas:retry"],
        params: idParams,
        async handler(this: OperatorThis, ctx: Context<ParamsOf<typeof idParams>>): Promise<Saga> {
          return this.operatorMove(
            ctx.params.id,
            (_, state) => (state.status === "FAILED" ? resume(state) : `only a FAILED saga can be retried`),
            "resumed",
          );
        },
      },

      /** Gives up on a RUNNING saga (a participant that never answers): compensates what it did; 409 otherwise. `sagas:compensate`. */
      compensate: {
        audit: { entity: "saga" },
        rest: "POST /:id/compensate",
        permissions: ["sagas:compensate"],
        params: idParams,
        async handler(this: OperatorThis, ctx: Context<ParamsOf<typeof idParams>>): Promise<Saga> {
          return this.operatorMove(
            ctx.params.id,
            (definition, state) =>
              state.status === "RUNNING"
                ? abandon(definition, state, "compensated by an operator")
                : `only a RUNNING saga can be compensated`,
            "abandoned",
          );
        },
      },
    },

    methods,
  };
  return schema as Partial<ServiceSchema>;
}
