/**
 * The sagas service's consumers (group `sagas`, mixins/consumer.mixin.ts): each definition's start event starts one
 * saga per subject, and a parked saga's command replayed from the dead-letter queue (`saga.stepDue`) resumes it. Both
 * run in the consumer's transaction, and this node runs the saga once it has committed.
 */
import type { ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import { deterministicId } from "../lib/delivery";
import type { EventEnvelope } from "../lib/events";
import { crashAt } from "../lib/failpoints";
import { cursorName, initialState, resume, type Cursor } from "../lib/saga";
import type { SagaEngineMethods, SagaEngineState } from "../lib/saga-engine";
import { runningOf, stateOf, type SagaRow } from "../lib/saga-rows";
import { storableJson } from "../lib/storable";
import { SAGA_START_EVENTS } from "../sagas";
import { consumerMixin, type ConsumerThis, type EventHandler } from "./consumer.mixin";
import type { DbMethods, DbServiceThis } from "./db.mixin";
import type { SagaOperatorMethods } from "./saga-operator.mixin";

/** The command a parked saga's dead letter carries: replayed, it resumes the saga at `cursor`. */
interface StepDue {
  sagaId: string;
  cursor: Cursor;
  resume?: boolean;
}

/** The engine's state and the take-over of mixins/saga-operator.mixin.ts, which a replayed dead letter shares. */
type ConsumersThis = ConsumerThis &
  DbServiceThis &
  DbMethods &
  SagaEngineState &
  SagaEngineMethods &
  Pick<SagaOperatorMethods, "lockSaga" | "takeOver">;

const sameCursor = (a: Cursor, b: Cursor) =>
  a.phase === b.phase &&
  a.step === b.step &&
  a.attempt === b.attempt &&
  (a.finish ?? null) === (b.finish ?? null) &&
  (a.waits ?? 0) === (b.waits ?? 0);

/** A definition's start event: one saga per subject (a repeated event finds it and starts nothing). */
function startHandler(definitionName: string): EventHandler<ConsumersThis> {
  return async function (envelope: EventEnvelope, transaction: Transaction) {
    const definition = this.definition(definitionName);
    const subjectId = definition.start.subjectId(envelope.payload);
    const sagaId = deterministicId("saga", definitionName, subjectId);
    const state = initialState();
    // The saga and its first timeline entry, under this node's lease, in the consumer's transaction.
    const [created] = await this.rows<SagaRow>(
      `WITH created AS (
         INSERT INTO sagas (id, definition, subject_id, status, cursor, completed, context, correlation_id,
                            lease_owner, lease_until)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, now() + make_interval(secs => $9 / 1000.0))
         ON CONFLICT (definition, subject_id) DO NOTHING RETURNING *
       ), logged AS (
         INSERT INTO saga_events (saga_id, step, attempt, outcome, message)
         SELECT id, 'start', 0, 'started', $10 FROM created
       )
       SELECT * FROM created`,
      [
        sagaId,
        definitionName,
        subjectId,
        state.status,
        storableJson(state.cursor),
        storableJson(definition.start.context(envelope.payload, sagaId)),
        envelope.correlationId,
        this.leaseOwner,
        this.settings.config.saga.leaseMs,
        `${envelope.type} ${envelope.id}`,
      ],
      { transaction },
    );
    if (!created) return;
    transaction.afterCommit(() => {
      this.broker.metrics.increment("aicunet.sagas.started", { definition: definitionName });
      crashAt(this.settings.config.failpoints, `saga.committed:${cursorName(definition, state.cursor)}`);
      this.executor.adopt(runningOf(created));
    });
  };
}

/** A parked saga's command replayed from the dead-letter queue: resumes it here if it is still parked there. */
const resumeFromDeadLetter: EventHandler<ConsumersThis> = async function (
  envelope: EventEnvelope,
  transaction: Transaction,
) {
  const due = envelope.payload as StepDue;
  // Only a resume: the per-step commands of the engine before issue 15 are obsolete (the sweeper runs those sagas).
  if (!due.resume) return;
  const row = await this.lockSaga(due.sagaId, transaction);
  if (!row || row.status !== "FAILED" || !sameCursor(row.cursor, due.cursor)) return;
  const decision = resume(stateOf(row));
  const step = cursorName(this.definition(row.definition), decision.state.cursor);
  await this.takeOver(
    row,
    decision,
    { step, attempt: 1, outcome: "resumed", message: "replayed from the dead-letter queue", durationMs: null },
    transaction,
  );
};

export function sagaConsumersMixin(): Partial<ServiceSchema> {
  return consumerMixin<ConsumersThis>({
    group: "sagas",
    handlers: {
      ...Object.fromEntries(
        Object.entries(SAGA_START_EVENTS).map(([definition, event]) => [event, startHandler(definition)]),
      ),
      "saga.stepDue": resumeFromDeadLetter,
    },
  });
}
