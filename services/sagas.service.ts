/**
 * sagas: the one saga engine. A definition's start event (`order.created`) starts one saga per subject, in the
 * consumer's transaction, under this node's lease; from then on the node drives it in memory (lib/saga-executor.ts):
 * each action is a Moleculer call (as the system, with the idempotency key `<saga id>:<step>`), and each outcome is
 * one checkpoint statement (state and timeline entry together), batched with the checkpoints of the other sagas the
 * node runs. No message travels between two steps and no row lock is held across a call.
 *
 * Leases make it durable: a node holds each saga it runs for SAGA_LEASE and renews all its leases in one statement
 * every third of that; a checkpoint applies only while the node still holds the lease and the row is at the version
 * it last saw. Every SAGA_SWEEP_INTERVAL each engine takes over, `FOR UPDATE SKIP LOCKED`, the moving sagas that no
 * one holds: a killed node's (lease run out: a `swept` timeline entry), a stopped node's (released on the way out),
 * so several replicas share the work and a saga whose node died resumes on any other, at the step it was at.
 * A saga parked as FAILED (a compensation that kept failing) sends a command to the dead-letter queue that resumes
 * it when replayed; `POST /api/sagas/:id/retry` does the same at once; both take the lease on the node that handles
 * them, as does an operator's `compensate`.
 *
 * This file holds the executor's ports (a step's call, the checkpoints, parking) and the read actions; its mixins
 * hold the consumers that start and resume sagas (saga-consumers), the operator's moves (saga-operator), the leases
 * and the sweeper (saga-leases) and the metrics (saga-metrics). The rows and the checkpoint statement are in
 * lib/saga-rows.ts and lib/saga-checkpoints.ts.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import { type Saga, SAGA_STATUSES, type SagaPage } from "../contracts/sagas";
import { selectPage } from "../lib/database";
import { deadLetterEnvelope } from "../lib/delivery";
import { NotFoundError } from "../lib/errors";
import { createEnvelope } from "../lib/events";
import { crashAt } from "../lib/failpoints";
import { pageParams } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { SYSTEM_CALLER } from "../lib/permissions";
import { requestContext } from "../lib/request-context";
import { classify, callAt, cursorName, timeoutAt, type Outcome } from "../lib/saga";
import { CHECKPOINT_SQL, checkpointRow } from "../lib/saga-checkpoints";
import type { SagaEngineMethods, SagaEngineState } from "../lib/saga-engine";
import { SagaExecutor, type Checkpoint, type RunningSaga } from "../lib/saga-executor";
import { timelineEntryOf, toSaga, type EventRow, type SagaRow } from "../lib/saga-rows";
import { storableJson } from "../lib/storable";
import sagaMigrations from "../migrations/sagas";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { sagaConsumersMixin } from "../mixins/saga-consumers.mixin";
import { sagaLeasesMixin } from "../mixins/saga-leases.mixin";
import { sagaMetricsMixin } from "../mixins/saga-metrics.mixin";
import { sagaOperatorMixin } from "../mixins/saga-operator.mixin";
import { sagaDefinitions } from "../sagas";

const MAX_PAGE_SIZE = 100;

/** The executor's ports (lib/saga-executor.ts `ExecutorPorts`), with the definition lookup the mixins share. */
interface SagasMethods extends SagaEngineMethods {
  writeCheckpoints(batch: Checkpoint[], transaction?: Transaction): Promise<Set<string>>;
  park(checkpoint: Checkpoint): Promise<boolean>;
  callStep(saga: RunningSaga, step: string): Promise<Outcome>;
  stepCommitted(checkpoint: Checkpoint): void;
}

type SagasThis = Service<DbSettings> & DbServiceThis & DbMethods & SagasMethods & OutboxMethods & SagaEngineState;

const listParams = paramsSchema({
  status: { type: "enum", values: [...SAGA_STATUSES], optional: true },
  definition: { type: "string", max: 100, optional: true },
  stalled: { type: "boolean", convert: true, optional: true },
  ...pageParams(MAX_PAGE_SIZE, 20),
  $$strict: true,
});
const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });
const forSubjectParams = paramsSchema({
  definition: { type: "string" },
  subjectId: { type: "string" },
  $$strict: true,
});

const SagasService: ServiceSchema<
  DbSettings,
  DbMethods & SagasMethods & OutboxMethods,
  DbServiceThis & SagaEngineState
> = {
  name: "sagas",
  // Moleculer starts mixins last to first and stops them first to last: the inflight metrics, then the leases and the
  // sweeper, start once the database and the outbox have, and stop before them.
  mixins: [
    sagaOperatorMixin(),
    sagaLeasesMixin(),
    sagaMetricsMixin(),
    outboxMixin(),
    dbMixin({
      service: "sagas",
      migrations: sagaMigrations,
    }),
    sagaConsumersMixin(),
  ],

  created(this: SagasThis) {
    this.definitions = sagaDefinitions(this.settings.config.saga);
    this.leaseOwner = `${this.broker.nodeID}/${this.broker.instanceID}`;
    this.executor = new SagaExecutor(
      {
        definition: (name) => this.definition(name),
        call: (saga, step) => this.callStep(saga, step),
        checkpoint: (batch) => this.writeCheckpoints(batch),
        park: (checkpoint) => this.park(checkpoint),
        committed: (checkpoint) => this.stepCommitted(checkpoint),
        warn: (message) => this.logger.warn(message),
      },
      { concurrency: this.settings.config.saga.concurrency },
    );
  },

  actions: {
    /**
     * Sagas, most recently changed first, by status and definition; `stalled=true`: only the moving ones no engine
     * holds (a dead node's, until the sweeper takes them over). `sagas:read`.
     */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["sagas:read"],
      params: listParams,
      async handler(this: SagasThis, ctx: Context<ParamsOf<typeof listParams>>): Promise<SagaPage> {
        const { status, definition, stalled, page, pageSize } = ctx.params;
        const where = `($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR definition = $2)
          AND ($3::boolean IS NOT TRUE OR (status IN ('RUNNING', 'COMPENSATING')
            AND (lease_until IS NULL OR lease_until < now())))`;
        const bind = [status ?? null, definition ?? null, stalled ?? null];
        const query = { table: "sagas", where, order: "updated_at DESC, id", bind };
        return selectPage<SagaRow, Saga>(this.rows, query, page, pageSize, (row) => toSaga(row, this.definitions));
      },
    },

    /** One saga with its timeline. `sagas:read`. */
    get: {
      rest: "GET /:id",
      permissions: ["sagas:read"],
      params: idParams,
      async handler(this: SagasThis, ctx: Context<ParamsOf<typeof idParams>>): Promise<Saga> {
        const [row] = await this.rows<SagaRow>("SELECT * FROM sagas WHERE id = $1", [ctx.params.id]);
        if (!row) throw new NotFoundError("Saga", ctx.params.id);
        const events = await this.rows<EventRow>("SELECT * FROM saga_events WHERE saga_id = $1 ORDER BY id", [row.id]);
        return { ...toSaga(row, this.definitions), timeline: events.map(timelineEntryOf) };
      },
    },

    /** The saga of a subject (an order), with its timeline, or null. System only (orders.get). */
    forSubject: {
      params: forSubjectParams,
      async handler(this: SagasThis, ctx: Context<ParamsOf<typeof forSubjectParams>>): Promise<Saga | null> {
        const [row] = await this.rows<{ id: string }>(
          "SELECT id FROM sagas WHERE definition = $1 AND subject_id = $2",
          [ctx.params.definition, ctx.params.subjectId],
        );
        return row ? ctx.call<Saga, { id: string }>("sagas.get", { id: row.id }) : null;
      },
    },
  },

  methods: {
    definition(this: SagasThis, name: string) {
      const definition = this.definitions[name];
      // Retryable: a node of an older version lacks it; one that has it will take the message.
      if (!definition) throw new Error(`No saga definition "${name}" on this node`);
      return definition;
    },

    async writeCheckpoints(this: SagasThis, batch: Checkpoint[], transaction?: Transaction) {
      const moved = await this.rows<{ id: string }>(
        CHECKPOINT_SQL,
        [storableJson(batch.map(checkpointRow)), this.leaseOwner],
        { transaction },
      );
      return new Set(moved.map((row) => row.id));
    },

    /** A saga parked as FAILED: its checkpoint and the dead letter that resumes it, in one transaction. */
    async park(this: SagasThis, checkpoint: Checkpoint) {
      const { saga, decision, entry } = checkpoint;
      return this.sequelize.transaction(async (transaction) => {
        const written = await this.writeCheckpoints([checkpoint], transaction);
        if (!written.has(saga.id)) return false;
        const origin = { source: "sagas", correlationId: saga.correlationId, causationId: null };
        const resumeCommand = createEnvelope(
          "saga.stepDue",
          { sagaId: saga.id, cursor: decision.state.cursor, resume: true },
          origin,
        );
        const deadLetter = deadLetterEnvelope(
          {
            channel: "saga.stepDue",
            group: "sagas",
            messageId: resumeCommand.id,
            message: resumeCommand,
            replayable: true,
            attempts: entry.attempt,
            error: {
              name: "Error",
              message: entry.message ?? "failed",
              code: 500,
              type: "SAGA_PARKED",
              data: { sagaId: saga.id, step: entry.step },
            },
          },
          origin,
        );
        await this.enqueueEvent(transaction, deadLetter);
        return true;
      });
    },

    /** One action of a saga, as the system, traced as a span of the request that started the saga. */
    async callStep(this: SagasThis, saga: RunningSaga, step: string) {
      const definition = this.definition(saga.definition);
      const { cursor } = saga.state;
      const call = callAt(definition, cursor);
      // Each step is a span of the trace of the request that started the saga, and the participant's span its child.
      const span = this.broker.tracer.startSpan(`saga ${definition.name} ${step}`, {
        traceID: saga.correlationId,
        type: "saga",
        service: this,
        tags: { sagaId: saga.id, step, attempt: cursor.attempt, nodeID: this.broker.nodeID },
      });
      let outcome: Outcome;
      try {
        // The participant's logs and audit records name the request that placed the order, not a new one; so do
        // this node's own lines about the call (its retries), whichever saga's work it was doing when it took this one.
        const result = await requestContext.run({ requestId: saga.correlationId }, () =>
          this.broker.call(call.action, call.params(saga.context, saga.state.reason), {
            timeout: timeoutAt(definition, cursor),
            meta: { caller: SYSTEM_CALLER, idempotencyKey: `${saga.id}:${step}` },
            requestID: saga.correlationId,
            parentSpan: span,
          }),
        );
        outcome = { kind: "ok", result };
      } catch (err) {
        outcome = classify(err);
        span.setError(err as Error);
      }
      span.addTags({ outcome: outcome.kind });
      span.finish();
      return outcome;
    },

    stepCommitted(this: SagasThis, checkpoint: Checkpoint) {
      const { saga, decision, entry } = checkpoint;
      const labels = { definition: saga.definition, step: entry.step, outcome: entry.outcome };
      this.broker.metrics.observe("aicunet.sagas.step.duration", entry.durationMs ?? 0, labels);
      if (decision.next) {
        // The crash window after a checkpoint and before the next action, for the fault tests.
        crashAt(
          this.settings.config.failpoints,
          `saga.committed:${cursorName(this.definition(saga.definition), decision.next.cursor)}`,
        );
      } else {
        // No next action: the saga ended (completed, compensated) or parked (failed).
        this.broker.metrics.increment(`aicunet.sagas.${decision.state.status.toLowerCase()}`, {
          definition: saga.definition,
        });
      }
    },
  },
};

export default SagasService;
