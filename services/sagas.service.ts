/**
 * sagas: the one saga engine. It starts a saga per subject when its definition's start event arrives, then drives
 * it with `saga.stepDue` commands sent to itself through its outbox: each command runs the action its cursor points
 * at (as the system, with the idempotency key `<saga id>:<step>`), asks `decide` (lib/saga.ts) what follows, and
 * writes the new state, the timeline entry and the next command in one transaction. Nothing is in memory: a node
 * killed at any moment leaves either the command unacknowledged (JetStream delivers it again; the participants'
 * idempotency keys make the repeat harmless) or the next command committed in the outbox.
 *
 * A command whose cursor is not the saga's current one (a late duplicate, a retry an operator overtook) is ignored.
 * That makes the sweeper safe: a command can still be lost after the outbox marked it sent (JetStream acknowledges
 * a publish before it syncs it to disk), so every SAGA_SWEEP_INTERVAL the engine sends the current command again for
 * each saga that has not moved for SAGA_STALL_AFTER past its due time, that no running step holds and whose command
 * is not waiting in the outbox; it says so in the timeline (`swept`).
 * A parked saga (FAILED, a compensation that kept failing) sends a command to the dead-letter queue that resumes it
 * when replayed; `POST /api/sagas/:id/retry` does the same at once.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { selectPage } from "../lib/database";
import type { Page } from "../lib/paging";
import { DataTypes, QueryTypes, type Transaction } from "sequelize";
import { deadLetterEnvelope, deterministicId } from "../lib/delivery";
import { ConflictError, NotFoundError } from "../lib/errors";
import { createEnvelope, type EventEnvelope } from "../lib/events";
import { config } from "../lib/config";
import { crashAt } from "../lib/failpoints";
import { SYSTEM_CALLER } from "../lib/permissions";
import {
  classify,
  SAGA_STATUSES,
  abandon,
  callAt,
  cursorName,
  decide,
  initialState,
  resume,
  timeoutAt,
  type Cursor,
  type Decision,
  type Outcome,
  type SagaDefinition,
  type SagaState,
  type SagaStatus,
} from "../lib/saga";
import sagaMigrations from "../migrations/sagas";
import { consumerMixin, type ConsumerThis, type EventHandler } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { sagaDefinitions, type StoredContext } from "../sagas";
import { storableJson } from "../lib/storable";

export interface SagaTimelineEntry {
  at: string;
  step: string;
  attempt: number;
  /**
   * `ok`, `rejected`, `transient`, `unavailable`, or what happened to the saga: `started`, `resumed`, `abandoned`,
   * `swept` (its command sent again after it stalled).
   */
  outcome: string;
  message: string | null;
  durationMs: number | null;
}

export interface Saga {
  id: string;
  definition: string;
  subjectId: string;
  status: SagaStatus;
  /** What it runs now (or stopped at): `payment`, `payment:compensate`, `finish:completed`, … */
  step: string;
  attempt: number;
  completedSteps: number;
  reason: string | null;
  context: StoredContext;
  createdAt: string;
  updatedAt: string;
  /** When its current command was, or will be, due (a retry's backoff puts it in the future). */
  dueAt: string;
  /** RUNNING or COMPENSATING and not moved for SAGA_STALL_AFTER past `dueAt`: its command may be lost. */
  stalled: boolean;
  finishedAt: string | null;
  timeline?: SagaTimelineEntry[];
}

export type SagaPage = Page<Saga>;

interface SagaRow {
  id: string;
  definition: string;
  subject_id: string;
  status: SagaStatus;
  cursor: Cursor;
  completed: number;
  context: StoredContext;
  reason: string | null;
  created_at: Date;
  updated_at: Date;
  due_at: Date;
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

interface StepDue {
  sagaId: string;
  cursor: Cursor;
  resume?: boolean;
}

const FINAL: readonly SagaStatus[] = ["COMPLETED", "COMPENSATED"];
const MOVING: readonly SagaStatus[] = ["RUNNING", "COMPENSATING"];
const MAX_PAGE_SIZE = 100;
/** Stalled sagas one sweep sends again; the next sweep takes the rest. */
const SWEEP_BATCH = 100;

const sameCursor = (a: Cursor, b: Cursor) =>
  a.phase === b.phase &&
  a.step === b.step &&
  a.attempt === b.attempt &&
  (a.finish ?? null) === (b.finish ?? null) &&
  (a.waits ?? 0) === (b.waits ?? 0);

function stateOf(row: SagaRow): SagaState {
  return { status: row.status, cursor: row.cursor, completed: row.completed, reason: row.reason };
}

interface SagasMethods {
  definition(name: string): SagaDefinition<StoredContext>;
  rows<T extends object>(sql: string, bind: unknown[], transaction?: Transaction): Promise<T[]>;
  toSaga(row: SagaRow): Saga;
  lockSaga(id: string, transaction: Transaction): Promise<SagaRow | undefined>;
  record(
    row: SagaRow,
    decision: Decision,
    entry: { step: string; attempt: number; outcome: string; message: string | null; durationMs: number | null },
    transaction: Transaction,
    context?: StoredContext,
  ): Promise<void>;
  sendStepDue(
    envelope: Pick<EventEnvelope, "correlationId" | "id">,
    due: StepDue,
    delayMs: number,
    transaction: Transaction,
  ): Promise<void>;
  operatorMove(
    id: string,
    move: (definition: SagaDefinition<StoredContext>, state: SagaState) => Decision | string,
    outcome: string,
  ): Promise<Saga>;
  refreshInflight(): Promise<void>;
  sweepStalled(): Promise<number>;
}

interface SagasState {
  definitions: Record<string, SagaDefinition<StoredContext>>;
  inflightTimer?: NodeJS.Timeout;
  sweepTimer?: NodeJS.Timeout;
  /** The sweep in progress, which stopping waits for: the database closes right after. */
  sweepRound?: Promise<void>;
  sweepStopping: boolean;
}

type SagasThis = Service<DbSettings> & DbServiceThis & SagasMethods & OutboxMethods & SagasState;

/** A definition's start event: one saga per subject (a repeated event finds it and starts nothing). */
function startHandler(definitionName: string): EventHandler {
  return async function (this: ConsumerThis, envelope: EventEnvelope, transaction: Transaction) {
    const svc = this as unknown as SagasThis;
    const definition = svc.definition(definitionName);
    const subjectId = definition.start.subjectId(envelope.payload);
    const sagaId = deterministicId("saga", definitionName, subjectId);
    const state = initialState();
    const [created] = await svc.rows<{ id: string }>(
      `INSERT INTO sagas (id, definition, subject_id, status, cursor, completed, context)
       VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (definition, subject_id) DO NOTHING RETURNING id`,
      [
        sagaId,
        definitionName,
        subjectId,
        state.status,
        storableJson(state.cursor),
        storableJson(definition.start.context(envelope.payload, sagaId)),
      ],
      transaction,
    );
    if (!created) return;
    await svc.rows(
      "INSERT INTO saga_events (saga_id, step, attempt, outcome, message) VALUES ($1, 'start', 0, 'started', $2)",
      [sagaId, `${envelope.type} ${envelope.id}`],
      transaction,
    );
    await svc.sendStepDue(envelope, { sagaId, cursor: state.cursor }, 0, transaction);
    transaction.afterCommit(() => {
      svc.broker.metrics.increment("aicunet.sagas.started", { definition: definitionName });
      crashAt(`saga.committed:${cursorName(definition, state.cursor)}`);
    });
  };
}

/** Runs the action a `saga.stepDue` command points at, if it is still the saga's current one. */
const runStep: EventHandler = async function (this: ConsumerThis, envelope: EventEnvelope, transaction: Transaction) {
  const svc = this as unknown as SagasThis;
  const due = envelope.payload as StepDue;
  const row = await svc.lockSaga(due.sagaId, transaction);
  if (!row || !sameCursor(row.cursor, due.cursor)) return;
  const definition = svc.definition(row.definition);
  let state = stateOf(row);
  if (due.resume) {
    if (state.status !== "FAILED") return;
    state = resume(state).state;
    await svc.rows(
      "INSERT INTO saga_events (saga_id, step, attempt, outcome, message) VALUES ($1, $2, $3, 'resumed', $4)",
      [row.id, cursorName(definition, state.cursor), state.cursor.attempt, "replayed from the dead-letter queue"],
      transaction,
    );
  } else if (FINAL.includes(state.status) || state.status === "FAILED") {
    return;
  }

  const call = callAt(definition, state.cursor);
  const name = cursorName(definition, state.cursor);
  const started = performance.now();
  // Each step is a span of the trace of the request that started the saga, and the participant's span its child.
  const span = svc.broker.tracer.startSpan(`saga ${definition.name} ${name}`, {
    traceID: envelope.correlationId,
    type: "saga",
    service: svc,
    tags: { sagaId: row.id, step: name, attempt: state.cursor.attempt, nodeID: svc.broker.nodeID },
  });
  let outcome: Outcome;
  try {
    const result = await svc.broker.call(call.action, call.params(row.context, state.reason), {
      timeout: timeoutAt(definition, state.cursor),
      meta: { caller: SYSTEM_CALLER, idempotencyKey: `${row.id}:${name}` },
      // The participant's logs and audit records name the request that placed the order, not a new one.
      requestID: envelope.correlationId,
      parentSpan: span,
    });
    outcome = { kind: "ok", result };
  } catch (err) {
    outcome = classify(err);
    span.setError(err as Error);
  }
  span.addTags({ outcome: outcome.kind });
  span.finish();
  const durationMs = Math.round(performance.now() - started);
  const decision = decide(definition, state, outcome);
  const step = state.cursor.phase === "forward" ? definition.steps[state.cursor.step] : undefined;
  const context =
    outcome.kind === "ok" && step?.result ? { ...row.context, ...step.result(row.context, outcome.result) } : undefined;
  const message = outcome.kind === "ok" ? null : outcome.message;
  await svc.record(
    row,
    decision,
    { step: name, attempt: state.cursor.attempt, outcome: outcome.kind, message, durationMs },
    transaction,
    context,
  );

  if (decision.next) {
    const { cursor, delayMs } = decision.next;
    await svc.sendStepDue(envelope, { sagaId: row.id, cursor }, delayMs, transaction);
    // The crash window between this commit and the next command's publish, for the fault tests.
    transaction.afterCommit(() => crashAt(`saga.committed:${cursorName(definition, cursor)}`));
  } else if (decision.state.status === "FAILED") {
    // Parked: the command that resumes it waits in the dead-letter queue for an operator's replay.
    const resumeCommand = createEnvelope(
      "saga.stepDue",
      { sagaId: row.id, cursor: decision.state.cursor, resume: true },
      { source: "sagas", correlationId: envelope.correlationId, causationId: envelope.id },
    );
    const deadLetter = deadLetterEnvelope(
      {
        channel: "saga.stepDue",
        group: "sagas",
        messageId: resumeCommand.id,
        message: resumeCommand,
        replayable: true,
        attempts: state.cursor.attempt,
        error: {
          name: "Error",
          message: message ?? "failed",
          code: 500,
          type: "SAGA_PARKED",
          data: { sagaId: row.id, step: name },
        },
      },
      { source: "sagas", correlationId: envelope.correlationId, causationId: envelope.id },
    );
    await svc.enqueueEvent(transaction, deadLetter);
  }
  const labels = { definition: row.definition, step: name, outcome: outcome.kind };
  transaction.afterCommit(() => {
    svc.broker.metrics.observe("aicunet.sagas.step.duration", durationMs, labels);
    // No next action: the saga ended (completed, compensated) or parked (failed).
    if (!decision.next) {
      svc.broker.metrics.increment(`aicunet.sagas.${decision.state.status.toLowerCase()}`, {
        definition: row.definition,
      });
    }
  });
};

const SagasService: ServiceSchema<DbSettings, DbMethods & SagasMethods & OutboxMethods, DbServiceThis & SagasState> = {
  name: "sagas",
  mixins: [
    outboxMixin(),
    dbMixin({
      service: "sagas",
      migrations: sagaMigrations,
      model: {
        name: "saga",
        define: { id: { type: DataTypes.UUID, primaryKey: true } },
        options: { tableName: "sagas", timestamps: false },
      },
    }),
    consumerMixin({
      group: "sagas",
      handlers: {
        ...Object.fromEntries(
          Object.values(sagaDefinitions()).map((definition) => [definition.start.event, startHandler(definition.name)]),
        ),
        "saga.stepDue": runStep,
      },
    }),
  ],

  created(this: SagasThis) {
    this.definitions = sagaDefinitions();
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
      description: "Stalled sagas whose command the sweeper sent again (a command lost after it left the outbox)",
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
    this.sweepStopping = false;
    const { sweepIntervalMs } = config().saga;
    const sweep = async () => {
      try {
        let swept = SWEEP_BATCH;
        // A full batch: more may be waiting, so the next one follows at once.
        while (swept === SWEEP_BATCH && !this.sweepStopping) swept = await this.sweepStalled();
      } catch (err) {
        this.logger.warn(`Saga sweep: ${(err as Error).message}; trying again in ${sweepIntervalMs} ms`);
      }
      if (!this.sweepStopping) this.sweepTimer = setTimeout(schedule, sweepIntervalMs);
    };
    const schedule = () => {
      this.sweepRound = sweep();
    };
    this.sweepTimer = setTimeout(schedule, sweepIntervalMs);
  },

  async stopped(this: SagasThis) {
    clearInterval(this.inflightTimer);
    this.sweepStopping = true;
    clearTimeout(this.sweepTimer);
    await this.sweepRound;
  },

  actions: {
    /**
     * Sagas, most recently changed first, by status and definition; `stalled=true`: only those that have not moved
     * for SAGA_STALL_AFTER past their due time (the sweeper sends their command again). `sagas:read`.
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
            AND due_at < now() - make_interval(secs => $4 / 1000.0)))`;
        const bind = [status ?? null, definition ?? null, stalled ?? null, config().saga.stallAfterMs];
        const query = { table: "sagas", where, order: "updated_at DESC, id", bind };
        return selectPage<SagaRow, Saga>(this.sequelize, query, page, pageSize, (row) => this.toSaga(row));
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

    async rows<T extends object>(this: SagasThis, sql: string, bind: unknown[], transaction?: Transaction) {
      return this.sequelize.query<T>(sql, { bind, type: QueryTypes.SELECT, transaction });
    },

    toSaga(this: SagasThis, row: SagaRow): Saga {
      const definition = this.definitions[row.definition];
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
        stalled: MOVING.includes(row.status) && Date.now() - row.due_at.getTime() > config().saga.stallAfterMs,
        finishedAt: row.finished_at?.toISOString() ?? null,
      };
    },

    async lockSaga(this: SagasThis, id: string, transaction: Transaction) {
      const [row] = await this.rows<SagaRow>("SELECT * FROM sagas WHERE id = $1 FOR UPDATE", [id], transaction);
      return row;
    },

    async record(this: SagasThis, row, decision, entry, transaction, context) {
      const { status, cursor, completed, reason } = decision.state;
      const finished = !decision.next && status !== "FAILED";
      // The sweeper's clock starts when the next command is due, not when it was scheduled: a backoff is no stall.
      const dueInMs = decision.next?.delayMs ?? 0;
      await this.rows(
        `UPDATE sagas SET status = $2, cursor = $3, completed = $4, reason = $5, context = coalesce($6::jsonb, context),
           version = version + 1, updated_at = now(), finished_at = CASE WHEN $7 THEN now() ELSE finished_at END,
           due_at = now() + make_interval(secs => $8 / 1000.0)
         WHERE id = $1`,
        [
          row.id,
          status,
          storableJson(cursor),
          completed,
          reason,
          context ? storableJson(context) : null,
          finished,
          dueInMs,
        ],
        transaction,
      );
      await this.rows(
        `INSERT INTO saga_events (saga_id, step, attempt, outcome, message, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)`,
        [row.id, entry.step, entry.attempt, entry.outcome, entry.message, entry.durationMs],
        transaction,
      );
    },

    async sendStepDue(this: SagasThis, cause, due, delayMs, transaction) {
      const command = createEnvelope("saga.stepDue", due, {
        source: "sagas",
        correlationId: cause.correlationId,
        causationId: cause.id,
      });
      await this.enqueueEvent(transaction, command, delayMs);
    },

    /** An operator's move on a saga, applied like any transition: state, timeline and next command together. */
    async operatorMove(this: SagasThis, id, move, outcome) {
      await this.sequelize.transaction(async (transaction) => {
        const row = await this.lockSaga(id, transaction);
        if (!row) throw new NotFoundError("Saga", id);
        const decision = move(this.definition(row.definition), stateOf(row));
        if (typeof decision === "string") {
          throw new ConflictError(`Saga ${id} is ${row.status}: ${decision}`, "CONFLICT", { id, status: row.status });
        }
        const step = cursorName(this.definition(row.definition), decision.state.cursor);
        await this.record(
          row,
          decision,
          { step, attempt: decision.state.cursor.attempt, outcome, message: "by an operator", durationMs: null },
          transaction,
        );
        if (decision.next) {
          await this.sendStepDue(
            { id, correlationId: id },
            { sagaId: id, cursor: decision.next.cursor },
            0,
            transaction,
          );
        }
      });
      this.logger.warn(`Saga ${id} ${outcome} by an operator`);
      const [row] = await this.rows<SagaRow>("SELECT * FROM sagas WHERE id = $1", [id]);
      return this.toSaga(row);
    },

    /**
     * One sweep: sends the current command again for the sagas that have not moved for SAGA_STALL_AFTER past their
     * due time, whose row no running step holds (SKIP LOCKED: a step in flight, or another replica's sweep, keeps
     * its saga) and whose command is not waiting in the outbox (the relay is behind, or a retry is scheduled: sending
     * more would not help). Restarts their clock, so a saga is swept again only if this command is lost too.
     * Returns how many it swept.
     */
    async sweepStalled(this: SagasThis) {
      const swept = await this.sequelize.transaction(async (transaction) => {
        const rows = await this.rows<SagaRow>(
          `SELECT * FROM sagas s
           WHERE s.status IN ('RUNNING', 'COMPENSATING') AND s.due_at < now() - make_interval(secs => $1 / 1000.0)
             AND s.definition = ANY($3::text[])
             AND NOT EXISTS (
               SELECT 1 FROM outbox o WHERE o.sent_at IS NULL AND o.channel = 'saga.stepDue'
                 AND o.envelope->'payload'->>'sagaId' = s.id::text AND o.envelope->'payload'->'cursor' = s.cursor)
           ORDER BY s.due_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED`,
          // Only the definitions this node knows: an older node leaves a newer definition's sagas to a newer one.
          [config().saga.stallAfterMs, SWEEP_BATCH, Object.keys(this.definitions)],
          transaction,
        );
        for (const row of rows) {
          const definition = this.definition(row.definition);
          const idle = Math.round((Date.now() - row.due_at.getTime()) / 1000);
          await this.rows("UPDATE sagas SET due_at = now() WHERE id = $1", [row.id], transaction);
          await this.rows(
            "INSERT INTO saga_events (saga_id, step, attempt, outcome, message) VALUES ($1, $2, $3, 'swept', $4)",
            [
              row.id,
              cursorName(definition, row.cursor),
              row.cursor.attempt,
              `not moved ${idle} s after its command was due: sent again`,
            ],
            transaction,
          );
          // The trace of the order's request is not known here any more; the saga's id names the sweep's.
          await this.sendStepDue(
            { id: row.id, correlationId: row.id },
            { sagaId: row.id, cursor: row.cursor },
            0,
            transaction,
          );
        }
        return rows;
      });
      for (const row of swept) {
        this.broker.metrics.increment("aicunet.sagas.swept", { definition: row.definition });
        this.logger.warn(`Saga ${row.id} stalled at ${this.toSaga(row).step}: its command was sent again`);
      }
      return swept.length;
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
