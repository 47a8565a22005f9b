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
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { selectPage } from "../lib/database";
import type { Transaction } from "sequelize";
import { deadLetterEnvelope, deterministicId } from "../lib/delivery";
import { ConflictError, NotFoundError } from "../lib/errors";
import { createEnvelope, type EventEnvelope } from "../lib/events";
import { config } from "../lib/config";
import { crashAt } from "../lib/failpoints";
import { SYSTEM_CALLER } from "../lib/permissions";
import { requestContext } from "../lib/request-context";
import {
  classify,
  abandon,
  callAt,
  cursorName,
  initialState,
  resume,
  timeoutAt,
  type Cursor,
  type Decision,
  type Outcome,
  type SagaDefinition,
  type SagaState,
} from "../lib/saga";
import { SagaExecutor, type Checkpoint, type RunningSaga, type TimelineEntry } from "../lib/saga-executor";
import sagaMigrations from "../migrations/sagas";
import { consumerMixin, type EventHandler } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { sagaDefinitions } from "../sagas";
import { type Saga, SAGA_STATUSES, type SagaPage, type SagaStatus, type StoredContext } from "../contracts/sagas";
import { storableJson } from "../lib/storable";

interface SagaRow {
  id: string;
  definition: string;
  subject_id: string;
  status: SagaStatus;
  cursor: Cursor;
  completed: number;
  context: StoredContext;
  reason: string | null;
  version: number;
  correlation_id: string;
  created_at: Date;
  updated_at: Date;
  due_at: Date;
  lease_owner: string | null;
  lease_until: Date | null;
  finished_at: Date | null;
}

interface EventRow {
  at: Date;
  step: string;
  attempt: number;
  outcome: string;
  message: string | null;
  duration_ms: number | null;
}

/** The command a parked saga's dead letter carries: replayed, it resumes the saga at `cursor`. */
interface StepDue {
  sagaId: string;
  cursor: Cursor;
  resume?: boolean;
}

const MOVING: readonly SagaStatus[] = ["RUNNING", "COMPENSATING"];
const MAX_PAGE_SIZE = 100;
/** Sagas one sweep takes over; the next sweep takes the rest. */
const SWEEP_BATCH = 200;

const sameCursor = (a: Cursor, b: Cursor) =>
  a.phase === b.phase &&
  a.step === b.step &&
  a.attempt === b.attempt &&
  (a.finish ?? null) === (b.finish ?? null) &&
  (a.waits ?? 0) === (b.waits ?? 0);

function stateOf(row: SagaRow): SagaState {
  return { status: row.status, cursor: row.cursor, completed: row.completed, reason: row.reason };
}

function runningOf(row: SagaRow): RunningSaga {
  return {
    id: row.id,
    definition: row.definition,
    context: row.context,
    state: stateOf(row),
    version: row.version,
    correlationId: row.correlation_id,
    dueAt: row.due_at.getTime(),
  };
}

/**
 * One statement for a batch of checkpoints: each saga's new state, applied only where this engine holds the lease
 * and the row is at the version it last saw, and the timeline entry of each one applied. A saga that ends (or is
 * parked) gives its lease up in the same statement. Returns the ids it moved.
 */
const CHECKPOINT_SQL = `
  WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
      id uuid, version integer, status text, cursor jsonb, completed integer, reason text, context jsonb,
      finished boolean, moving boolean, due_ms double precision,
      step text, attempt integer, outcome text, message text, duration_ms integer)
  ), moved AS (
    UPDATE sagas s SET status = i.status, cursor = i.cursor, completed = i.completed, reason = i.reason,
      context = coalesce(i.context, s.context), version = s.version + 1, updated_at = now(),
      finished_at = CASE WHEN i.finished THEN now() ELSE s.finished_at END,
      due_at = now() + make_interval(secs => i.due_ms / 1000.0),
      lease_owner = CASE WHEN i.moving THEN s.lease_owner END,
      lease_until = CASE WHEN i.moving THEN s.lease_until END
    FROM input i WHERE s.id = i.id AND s.version = i.version AND s.lease_owner = $2
    RETURNING s.id
  ), logged AS (
    INSERT INTO saga_events (saga_id, step, attempt, outcome, message, duration_ms)
    SELECT i.id, i.step, i.attempt, i.outcome, i.message, i.duration_ms FROM input i JOIN moved m ON m.id = i.id
  )
  SELECT id FROM moved`;

function checkpointRow(checkpoint: Checkpoint) {
  const { saga, decision, entry, context } = checkpoint;
  const { status, cursor, completed, reason } = decision.state;
  return {
    id: saga.id,
    version: saga.version,
    status,
    cursor,
    completed,
    reason,
    context: context ?? null,
    finished: !decision.next && status !== "FAILED",
    moving: decision.next !== null,
    // The sweeper and the API read when the next action is due; a backoff is no stall.
    due_ms: decision.next?.delayMs ?? 0,
    step: entry.step,
    attempt: entry.attempt,
    outcome: entry.outcome,
    message: entry.message,
    duration_ms: entry.durationMs,
  };
}

interface SagasMethods {
  definition(name: string): SagaDefinition<StoredContext>;
  toSaga(row: SagaRow): Saga;
  lockSaga(id: string, transaction: Transaction): Promise<SagaRow | undefined>;
  writeCheckpoints(batch: Checkpoint[], transaction?: Transaction): Promise<Set<string>>;
  park(checkpoint: Checkpoint): Promise<boolean>;
  callStep(saga: RunningSaga, step: string): Promise<Outcome>;
  stepCommitted(checkpoint: Checkpoint): void;
  takeOver(row: SagaRow, decision: Decision, entry: TimelineEntry, transaction: Transaction): Promise<void>;
  operatorMove(
    id: string,
    move: (definition: SagaDefinition<StoredContext>, state: SagaState) => Decision | string,
    outcome: string,
  ): Promise<Saga>;
  renewLeases(): Promise<void>;
  sweepUnowned(): Promise<number>;
  refreshInflight(): Promise<void>;
}

interface SagasState {
  definitions: Record<string, SagaDefinition<StoredContext>>;
  executor: SagaExecutor;
  /** This engine's name on the leases it holds: `<node id>/<instance id>`, new with every process. */
  leaseOwner: string;
  inflightTimer?: NodeJS.Timeout;
  leaseTimer?: NodeJS.Timeout;
  sweepTimer?: NodeJS.Timeout;
  /** The sweep in progress, which stopping waits for: the database closes right after. */
  sweepRound?: Promise<void>;
  sweepStopping: boolean;
}

type SagasThis = Service<DbSettings> & DbServiceThis & DbMethods & SagasMethods & OutboxMethods & SagasState;

/** A definition's start event: one saga per subject (a repeated event finds it and starts nothing). */
function startHandler(definitionName: string): EventHandler<SagasThis> {
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
        config().saga.leaseMs,
        `${envelope.type} ${envelope.id}`,
      ],
      { transaction },
    );
    if (!created) return;
    transaction.afterCommit(() => {
      this.broker.metrics.increment("aicunet.sagas.started", { definition: definitionName });
      crashAt(`saga.committed:${cursorName(definition, state.cursor)}`);
      this.executor.adopt(runningOf(created));
    });
  };
}

/** A parked saga's command replayed from the dead-letter queue: resumes it here if it is still parked there. */
const resumeFromDeadLetter: EventHandler<SagasThis> = async function (
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

const SagasService: ServiceSchema<DbSettings, DbMethods & SagasMethods & OutboxMethods, DbServiceThis & SagasState> = {
  name: "sagas",
  mixins: [
    outboxMixin(),
    dbMixin({
      service: "sagas",
      migrations: sagaMigrations,
    }),
    consumerMixin<SagasThis>({
      group: "sagas",
      handlers: {
        ...Object.fromEntries(
          Object.values(sagaDefinitions()).map((definition) => [definition.start.event, startHandler(definition.name)]),
        ),
        "saga.stepDue": resumeFromDeadLetter,
      },
    }),
  ],

  created(this: SagasThis) {
    this.definitions = sagaDefinitions();
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
      { concurrency: config().saga.concurrency },
    );
    const metrics = this.broker.metrics;
    for (const outcome of ["started", "completed", "compensated", "failed"]) {
      metrics.register({
        type: "counter",
        name: `aicunet.sagas.${outcome}`,
        labelNames: ["definition"],
        description: `Sagas ${outcome}`,
      });
    }
    metrics.register({
      type: "histogram",
      name: "aicunet.sagas.step.duration",
      labelNames: ["definition", "step", "outcome"],
      unit: "millisecond",
      quantiles: true,
      description: "Duration of saga step actions",
    });
    metrics.register({
      type: "counter",
      name: "aicunet.sagas.swept",
      labelNames: ["definition"],
      description: "Sagas taken over from an engine whose lease ran out (a node that died or stalled)",
    });
    metrics.register({
      type: "gauge",
      name: "aicunet.sagas.inflight",
      labelNames: ["definition", "status"],
      description: "Sagas not finished yet (RUNNING, COMPENSATING) and parked (FAILED)",
    });
  },

  async started(this: SagasThis) {
    await this.refreshInflight();
    this.inflightTimer = setInterval(() => this.refreshInflight().catch(() => undefined), 5000);
    const { sweepIntervalMs, leaseMs } = config().saga;
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

  async stopped(this: SagasThis) {
    clearInterval(this.inflightTimer);
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

  actions: {
    /**
     * Sagas, most recently changed first, by status and definition; `stalled=true`: only the moving ones no engine
     * holds (a dead node's, until the sweeper takes them over). `sagas:read`.
     */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["sagas:read"],
      params: {
        status: { type: "enum", values: [...SAGA_STATUSES], optional: true },
        definition: { type: "string", max: 100, optional: true },
        stalled: { type: "boolean", convert: true, optional: true },
        page: { type: "number", integer: true, positive: true, convert: true, default: 1 },
        pageSize: { type: "number", integer: true, positive: true, max: MAX_PAGE_SIZE, convert: true, default: 20 },
        $$strict: true,
      },
      async handler(
        this: SagasThis,
        ctx: Context<{ status?: SagaStatus; definition?: string; stalled?: boolean; page: number; pageSize: number }>,
      ): Promise<SagaPage> {
        const { status, definition, stalled, page, pageSize } = ctx.params;
        const where = `($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR definition = $2)
          AND ($3::boolean IS NOT TRUE OR (status IN ('RUNNING', 'COMPENSATING')
            AND (lease_until IS NULL OR lease_until < now())))`;
        const bind = [status ?? null, definition ?? null, stalled ?? null];
        const query = { table: "sagas", where, order: "updated_at DESC, id", bind };
        return selectPage<SagaRow, Saga>(this.rows, query, page, pageSize, (row) => this.toSaga(row));
      },
    },

    /** One saga with its timeline. `sagas:read`. */
    get: {
      rest: "GET /:id",
      permissions: ["sagas:read"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: SagasThis, ctx: Context<{ id: string }>): Promise<Saga> {
        const [row] = await this.rows<SagaRow>("SELECT * FROM sagas WHERE id = $1", [ctx.params.id]);
        if (!row) throw new NotFoundError("Saga", ctx.params.id);
        const events = await this.rows<EventRow>("SELECT * FROM saga_events WHERE saga_id = $1 ORDER BY id", [row.id]);
        return {
          ...this.toSaga(row),
          timeline: events.map((event) => ({
            at: event.at.toISOString(),
            step: event.step,
            attempt: event.attempt,
            outcome: event.outcome,
            message: event.message,
            durationMs: event.duration_ms,
          })),
        };
      },
    },

    /** The saga of a subject (an order), with its timeline, or null. System only (orders.get). */
    forSubject: {
      params: { definition: { type: "string" }, subjectId: { type: "string" }, $$strict: true },
      async handler(this: SagasThis, ctx: Context<{ definition: string; subjectId: string }>): Promise<Saga | null> {
        const [row] = await this.rows<{ id: string }>(
          "SELECT id FROM sagas WHERE definition = $1 AND subject_id = $2",
          [ctx.params.definition, ctx.params.subjectId],
        );
        return row ? ctx.call<Saga, { id: string }>("sagas.get", { id: row.id }) : null;
      },
    },

    /** Resumes a parked (FAILED) saga at the action it stopped at, from its first attempt; 409 otherwise. `sagas:retry`. */
    retry: {
      audit: { entity: "saga" },
      rest: "POST /:id/retry",
      permissions: ["sagas:retry"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: SagasThis, ctx: Context<{ id: string }>): Promise<Saga> {
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
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: SagasThis, ctx: Context<{ id: string }>): Promise<Saga> {
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

  methods: {
    definition(this: SagasThis, name: string) {
      const definition = this.definitions[name];
      // Retryable: a node of an older version lacks it; one that has it will take the message.
      if (!definition) throw new Error(`No saga definition "${name}" on this node`);
      return definition;
    },

    toSaga(this: SagasThis, row: SagaRow): Saga {
      const definition = this.definitions[row.definition];
      const held = row.lease_until !== null && row.lease_until.getTime() > Date.now();
      return {
        id: row.id,
        definition: row.definition,
        subjectId: row.subject_id,
        status: row.status,
        step: definition ? cursorName(definition, row.cursor) : row.cursor.phase,
        attempt: row.cursor.attempt,
        completedSteps: row.completed,
        reason: row.reason,
        context: row.context,
        createdAt: row.created_at.toISOString(),
        updatedAt: row.updated_at.toISOString(),
        dueAt: row.due_at.toISOString(),
        leaseOwner: row.lease_owner,
        leaseUntil: row.lease_until?.toISOString() ?? null,
        stalled: MOVING.includes(row.status) && !held,
        finishedAt: row.finished_at?.toISOString() ?? null,
      };
    },

    async lockSaga(this: SagasThis, id: string, transaction: Transaction) {
      const [row] = await this.rows<SagaRow>("SELECT * FROM sagas WHERE id = $1 FOR UPDATE", [id], { transaction });
      return row;
    },

    async writeCheckpoints(this: SagasThis, batch, transaction) {
      const moved = await this.rows<{ id: string }>(
        CHECKPOINT_SQL,
        [storableJson(batch.map(checkpointRow)), this.leaseOwner],
        { transaction },
      );
      return new Set(moved.map((row) => row.id));
    },

    /** A saga parked as FAILED: its checkpoint and the dead letter that resumes it, in one transaction. */
    async park(this: SagasThis, checkpoint) {
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
    async callStep(this: SagasThis, saga, step) {
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

    stepCommitted(this: SagasThis, checkpoint) {
      const { saga, decision, entry } = checkpoint;
      const labels = { definition: saga.definition, step: entry.step, outcome: entry.outcome };
      this.broker.metrics.observe("aicunet.sagas.step.duration", entry.durationMs ?? 0, labels);
      if (decision.next) {
        // The crash window after a checkpoint and before the next action, for the fault tests.
        crashAt(`saga.committed:${cursorName(this.definition(saga.definition), decision.next.cursor)}`);
      } else {
        // No next action: the saga ended (completed, compensated) or parked (failed).
        this.broker.metrics.increment(`aicunet.sagas.${decision.state.status.toLowerCase()}`, {
          definition: saga.definition,
        });
      }
    },

    /**
     * A move made outside the executor (an operator's, a dead letter's replay), on a row locked in `transaction`:
     * the new state and its timeline entry, the lease taken by this engine whoever held it (its next checkpoint
     * finds the version moved and lets the saga go), and this engine drives it from there once committed.
     */
    async takeOver(this: SagasThis, row, decision, entry, transaction) {
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
          config().saga.leaseMs,
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
    async operatorMove(this: SagasThis, id, move, outcome) {
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
      return this.toSaga(row);
    },

    /** One statement renews the lease of every saga this engine runs. */
    async renewLeases(this: SagasThis) {
      const ids = this.executor.ids();
      if (ids.length === 0) return;
      await this.rows(
        `UPDATE sagas SET lease_until = now() + make_interval(secs => $3 / 1000.0)
         WHERE id = ANY($2::uuid[]) AND lease_owner = $1 RETURNING id`,
        [this.leaseOwner, ids, config().saga.leaseMs],
      );
    },

    /**
     * One sweep: takes over, `FOR UPDATE SKIP LOCKED` (several engines sweep at once without taking the same
     * saga), the moving sagas of the definitions this node knows that no engine holds, longest unheld first, and
     * runs them. A lease that ran out (its engine died or stalled) leaves a `swept` entry in the timeline; one
     * released by a stopping engine, or never taken (a saga from before leases), is taken quietly.
     * Returns how many it took.
     */
    async sweepUnowned(this: SagasThis) {
      const { leaseMs } = config().saga;
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
          `Saga ${row.id} at ${this.toSaga(row).step}: ${row.previous_owner}'s lease ran out; taken over`,
        );
      }
      for (const row of taken.rows) this.executor.adopt(runningOf(row));
      return taken.rows.length;
    },

    async refreshInflight(this: SagasThis) {
      const counts = await this.rows<{ definition: string; status: string; count: number }>(
        `SELECT definition, status, count(*)::int AS count FROM sagas
         WHERE status IN ('RUNNING', 'COMPENSATING', 'FAILED') GROUP BY definition, status`,
        [],
      );
      for (const definition of Object.keys(this.definitions)) {
        for (const status of ["RUNNING", "COMPENSATING", "FAILED"]) {
          const found = counts.find((count) => count.definition === definition && count.status === status);
          this.broker.metrics.set("aicunet.sagas.inflight", found?.count ?? 0, { definition, status });
        }
      }
    },
  },
};

export default SagasService;
