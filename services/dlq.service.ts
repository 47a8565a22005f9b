/**
 * dlq: the dead-letter queue. Every consumer group that gives up on a message publishes a `message.deadLettered`
 * record (mixins/consumer.mixin.ts); this service keeps them in its own database where operators list, search and
 * inspect them, replay them to their original channel once the cause is fixed, or discard them. A replayed message
 * that is then processed reports `message.recovered`, which resolves its entry; one that fails again reopens it.
 * Every replay is kept with what became of it (its lineage). Many letters are replayed by a replay operation: a
 * selection frozen when it starts, sent by the server at a bounded rate, cancellable, kept with a result per letter.
 * DLQ depth (pending entries) is exported per channel as the `aicunet.dlq.depth` gauge.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import { escapeLike, selectPage } from "../lib/database";
import { pageOf, pageParams, type Page, type PageQuery } from "../lib/paging";
import type { Transaction } from "sequelize";
import { REPLAY_HEADER, channelsReady } from "../lib/delivery";
import {
  DEAD_LETTER_STATUSES,
  type DeadLetter,
  type DeadLetterCount,
  type DeadLetterFailure,
  type DeadLetterFilter,
  type DeadLetterGroup,
  type DeadLetterPage,
  type DeadLetterStatus,
  type ErrorRecord,
  type Replay,
  type ReplayOperation,
  type ReplayOutcome,
  type ReplaySelection,
  type ReplayState,
} from "../contracts/dead-letters";
import { ConflictError, NotFoundError } from "../lib/errors";
import type { EventEnvelope } from "../lib/events";
import { actorOf } from "../lib/permissions";
import dlqMigrations from "../migrations/dlq";
import type { CallerMeta } from "../contracts/caller";
import { consumerMixin, type UnprocessableMessage } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { storableJson, storableText } from "../lib/storable";

/** What a replay operation acts on: pending, replayable letters matching the filter, failed no later than `until`. */
export type ReplayParams = Omit<DeadLetterFilter, "status"> & { until: Date };
interface DeadLetteredPayload {
  channel: string;
  group: string;
  messageId: string | null;
  message: unknown;
  replayable: boolean;
  attempts: number;
  error: ErrorRecord;
  failedAt: string;
}

interface RecoveredPayload {
  deadLetterId: string;
  channel: string;
  group: string;
  messageId: string;
}

interface DeadLetterRow {
  id: string;
  channel: string;
  consumer_group: string;
  message_id: string | null;
  message: unknown;
  replayable: boolean;
  status: DeadLetterStatus;
  attempts: number;
  error: ErrorRecord;
  failures: DeadLetterFailure[];
  correlation_id: string | null;
  replay_count: number;
  last_replayed_at: Date | null;
  last_replayed_by: string | null;
  resolved_at: Date | null;
  discarded_at: Date | null;
  discarded_by: string | null;
  discard_reason: string | null;
  first_failed_at: Date;
  failed_at: Date;
  fingerprint: string;
  error_summary: string;
}

const MAX_PAGE_SIZE = 100;
/** Channels × groups × statuses: a few dozen rows, which the dashboards and alerts read whole. */
const MAX_STATS_PAGE = 1000;
/** Most entries one replay operation acts on; a larger selection is refused so the operator narrows it. */
const MAX_BATCH = 1000;
/** Letters a replay operation sends per second unless asked otherwise: consumers get time to show the outcome. */
const DEFAULT_REPLAY_RATE = 10;
/** How often a dlq node looks for replay operations due, when none of its own is (another node's, or after a restart). */
const REPLAY_IDLE_POLL_MS = 2000;
const DEPTH_METRIC = "aicunet.dlq.depth";

const iso = (date: Date | null) => (date ? date.toISOString() : null);

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    id: row.id,
    channel: row.channel,
    group: row.consumer_group,
    messageId: row.message_id,
    message: row.message,
    replayable: row.replayable,
    status: row.status,
    attempts: row.attempts,
    error: row.error,
    failures: row.failures,
    correlationId: row.correlation_id,
    replayCount: row.replay_count,
    lastReplayedAt: iso(row.last_replayed_at),
    lastReplayedBy: row.last_replayed_by,
    resolvedAt: iso(row.resolved_at),
    discardedAt: iso(row.discarded_at),
    discardedBy: row.discarded_by,
    discardReason: row.discard_reason,
    firstFailedAt: row.first_failed_at.toISOString(),
    failedAt: row.failed_at.toISOString(),
    fingerprint: row.fingerprint,
    errorSummary: row.error_summary,
  };
}

interface ReplayRow {
  id: string;
  dead_letter_id: string;
  operation_id: string | null;
  state: ReplayState;
  detail: string | null;
  attempt: number | null;
  replayed_by: string | null;
  replayed_at: Date | null;
  outcome: ReplayOutcome | null;
  outcome_error: ErrorRecord | null;
  outcome_at: Date | null;
}

function toReplay(row: ReplayRow): Replay {
  return {
    id: row.id,
    deadLetterId: row.dead_letter_id,
    operationId: row.operation_id,
    state: row.state,
    detail: row.detail,
    attempt: row.attempt,
    replayedBy: row.replayed_by,
    replayedAt: iso(row.replayed_at),
    outcome: row.outcome,
    outcomeError: row.outcome_error,
    outcomeAt: iso(row.outcome_at),
  };
}

interface ReplayOperationRow {
  id: string;
  selection: ReplaySelection;
  status: ReplayOperation["status"];
  total: number;
  rate_per_second: number;
  started_by: string;
  started_at: Date;
  cancelled_by: string | null;
  finished_at: Date | null;
}

type ReplayCounts = Pick<ReplayOperation, "progress" | "outcomes">;

function toReplayOperation(row: ReplayOperationRow, counts: ReplayCounts | undefined): ReplayOperation {
  return {
    id: row.id,
    selection: row.selection,
    status: row.status,
    total: row.total,
    ratePerSecond: row.rate_per_second,
    startedBy: row.started_by,
    startedAt: row.started_at.toISOString(),
    cancelledBy: row.cancelled_by,
    finishedAt: iso(row.finished_at),
    progress: counts?.progress ?? { waiting: 0, sent: 0, skipped: 0, cancelled: 0 },
    outcomes: counts?.outcomes ?? { pending: 0, resolved: 0, failed: 0 },
  };
}

/** The WHERE clause and binds of a filter; every value is bound, never interpolated. */
function whereOf(filter: DeadLetterFilter, firstBind = 1): { sql: string; bind: unknown[] } {
  const bind = [
    filter.status ?? null,
    filter.channel ?? null,
    filter.group ?? null,
    filter.errorType ?? null,
    filter.from ?? null,
    filter.to ?? null,
    filter.search ? `%${escapeLike(filter.search)}%` : null,
    filter.fingerprint ?? null,
    filter.orderId ?? null,
  ];
  const n = (i: number) => `$${firstBind + i}`;
  const sql = `(${n(0)}::text IS NULL OR status = ${n(0)}) AND (${n(1)}::text IS NULL OR channel = ${n(1)})
    AND (${n(2)}::text IS NULL OR consumer_group = ${n(2)}) AND (${n(3)}::text IS NULL OR error_type = ${n(3)})
    AND (${n(4)}::timestamptz IS NULL OR failed_at >= ${n(4)}) AND (${n(5)}::timestamptz IS NULL OR failed_at <= ${n(5)})
    AND (${n(6)}::text IS NULL OR message::text ILIKE ${n(6)} OR error::text ILIKE ${n(6)})
    AND (${n(7)}::text IS NULL OR fingerprint = ${n(7)})
    AND (${n(8)}::text IS NULL OR message->'payload'->'order'->>'id' = ${n(8)} OR message->'payload'->>'orderId' = ${n(8)})`;
  return { sql, bind };
}

const filterParams = {
  channel: { type: "string", max: 200, optional: true },
  group: { type: "string", max: 200, optional: true },
  errorType: { type: "string", max: 100, optional: true },
  from: { type: "date", convert: true, optional: true },
  to: { type: "date", convert: true, optional: true },
  search: { type: "string", min: 1, max: 200, optional: true },
  fingerprint: { type: "string", pattern: /^[0-9a-f]{32}$/, optional: true },
  orderId: { type: "uuid", optional: true },
} as const;

interface DlqMethods {
  findEntry(id: string): Promise<DeadLetterRow>;
  replayLetter(id: string, actor: string, transaction: Transaction, replayId?: string): Promise<DeadLetterRow>;
  selectionIds(selection: ReplayParams, transaction?: Transaction): Promise<string[]>;
  replayOperations(rows: ReplayOperationRow[]): Promise<ReplayOperation[]>;
  findReplayOperation(id: string): Promise<ReplayOperation>;
  replayNextDue(): Promise<boolean>;
  runReplays(): void;
  refreshDepth(): Promise<void>;
}

interface DlqState {
  depthChannels: Set<string>;
  /** The replay runner's next turn, and the turn running now (awaited when the service stops). */
  replayTimer?: NodeJS.Timeout;
  replayTurn?: Promise<void>;
  replayStopped: boolean;
}

type DlqThis = Service<DbSettings> & DbServiceThis & DbMethods & DlqMethods & DlqState;

/** A replay selection as the filter it is: the letters pending now, and none that failed after `until`. */
function selectionFilter({ until, ...filter }: ReplayParams): DeadLetterFilter {
  return { ...filter, to: filter.to && filter.to < until ? filter.to : until, status: "PENDING" };
}

const selectionParams = {
  ...filterParams,
  /** When the operator's view was loaded (a group's `lastSeen`): letters that failed later are left alone. */
  until: { type: "date", convert: true },
  $$strict: true,
} as const;

const DlqService: ServiceSchema<DbSettings, DbMethods & DlqMethods, DbServiceThis & DlqState> = {
  name: "dlq",
  mixins: [
    dbMixin({
      service: "dlq",
      migrations: dlqMigrations,
    }),
    consumerMixin<DlqThis>({
      group: "dlq",
      /**
       * A dead letter (or recovery notice) this service cannot store as a record is stored as the text that arrived,
       * not replayable: a dead letter about it would come back here and fail the same way, without end.
       */
      async keepUnprocessable(message: UnprocessableMessage) {
        const failure: DeadLetterFailure = {
          deadLetterId: message.id,
          attempts: message.attempts,
          error: message.error,
          failedAt: new Date().toISOString(),
        };
        await this.rows(
          `INSERT INTO dead_letters (id, channel, consumer_group, message_id, message, replayable, attempts, error,
             error_type, failures, correlation_id, first_failed_at, failed_at)
           VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8, jsonb_build_array($9::jsonb), $10, now(), now())
           ON CONFLICT DO NOTHING`,
          [
            message.id,
            message.channel,
            message.group,
            // From the message itself, which may be anything: made storable so keeping it cannot fail on them.
            message.messageId === null ? null : storableText(message.messageId),
            storableJson({ text: message.text, bytes: message.bytes }),
            message.attempts,
            storableJson(message.error),
            storableText(message.error.type).slice(0, 100),
            storableJson(failure),
            message.correlationId === null ? null : storableText(message.correlationId),
          ],
        );
        await this.refreshDepth();
      },
      handlers: {
        /** Stores a dead letter, or reopens the entry of a message that failed again after a replay. */
        async "message.deadLettered"(envelope: EventEnvelope, transaction: Transaction) {
          const dead = envelope.payload as DeadLetteredPayload;
          const failure: DeadLetterFailure = {
            deadLetterId: envelope.id,
            attempts: dead.attempts,
            error: dead.error,
            failedAt: dead.failedAt,
          };
          // A message that failed again after a replay: its entry reopens, and that replay's outcome is this error.
          await this.rows(
            `WITH stored AS (
               INSERT INTO dead_letters (id, channel, consumer_group, message_id, message, replayable, attempts, error,
                 error_type, failures, correlation_id, first_failed_at, failed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, jsonb_build_array($10::jsonb), $11, $12, $12)
               ON CONFLICT (consumer_group, message_id) WHERE message_id IS NOT NULL AND status <> 'DISCARDED'
               DO UPDATE SET status = 'PENDING', attempts = dead_letters.attempts + EXCLUDED.attempts,
                 error = EXCLUDED.error, error_type = EXCLUDED.error_type, message = EXCLUDED.message,
                 failures = dead_letters.failures || EXCLUDED.failures, failed_at = EXCLUDED.failed_at,
                 updated_at = now()
               RETURNING id)
             UPDATE replays SET outcome = 'FAILED', outcome_error = $8, outcome_at = now()
             WHERE outcome = 'PENDING' AND dead_letter_id IN (SELECT id FROM stored)`,
            [
              envelope.id,
              dead.channel,
              dead.group,
              dead.messageId,
              storableJson(dead.message),
              dead.replayable,
              dead.attempts,
              storableJson(dead.error),
              dead.error.type,
              storableJson(failure),
              envelope.correlationId,
              dead.failedAt,
            ],
            { transaction },
          );
          transaction.afterCommit(() => this.refreshDepth());
        },

        /**
         * A replayed message was processed by its group: its entry (and any other for it in that group) is resolved,
         * and so is the outcome of its replay.
         */
        async "message.recovered"(envelope: EventEnvelope, transaction: Transaction) {
          const recovered = envelope.payload as RecoveredPayload;
          await this.rows(
            `WITH resolved AS (
               UPDATE dead_letters SET status = 'RESOLVED', resolved_at = now(), updated_at = now()
               WHERE consumer_group = $1 AND message_id = $2 AND status IN ('PENDING', 'REPLAYED') RETURNING id)
             UPDATE replays SET outcome = 'RESOLVED', outcome_at = now()
             WHERE outcome = 'PENDING' AND dead_letter_id IN (SELECT id FROM resolved)`,
            [recovered.group, recovered.messageId],
            { transaction },
          );
          transaction.afterCommit(() => this.refreshDepth());
        },
      },
    }),
  ],

  created(this: DlqThis) {
    this.depthChannels = new Set();
    this.replayStopped = false;
    this.broker.metrics.register({
      type: "gauge",
      name: DEPTH_METRIC,
      labelNames: ["channel"],
      description: "Dead letters waiting for an operator (status PENDING), per original channel",
    });
  },

  async started(this: DlqThis) {
    await this.refreshDepth();
    // Operations left running by a stopped node (this one before a restart, or another) go on from where they were.
    this.runReplays();
  },

  async stopped(this: DlqThis) {
    this.replayStopped = true;
    clearTimeout(this.replayTimer);
    await this.replayTurn;
  },

  actions: {
    /** A page of dead letters, newest failure first, filtered and searched (message and error text). `dlq:read`. */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["dlq:read"],
      params: {
        status: { type: "enum", values: [...DEAD_LETTER_STATUSES], optional: true },
        ...filterParams,
        page: { type: "number", integer: true, positive: true, convert: true, default: 1 },
        pageSize: { type: "number", integer: true, positive: true, max: MAX_PAGE_SIZE, convert: true, default: 20 },
        $$strict: true,
      },
      async handler(
        this: DlqThis,
        ctx: Context<DeadLetterFilter & { page: number; pageSize: number }>,
      ): Promise<DeadLetterPage> {
        const { page, pageSize } = ctx.params;
        const where = whereOf(ctx.params);
        const query = { table: "dead_letters", where: where.sql, order: "failed_at DESC, id", bind: where.bind };
        return selectPage(this.rows, query, page, pageSize, toDeadLetter);
      },
    },

    /**
     * Dead letters grouped by failure fingerprint (channel, consumer group, error type, the error's summary), largest
     * group first: count, first and last seen, the latest one's error in full, the orders concerned. PENDING ones unless
     * `status` says otherwise; the list's filters apply. A group's letters: `GET /api/dlq?fingerprint=`; replaying
     * them: `POST /api/dlq/replay` with the fingerprint and the count seen (`expectedCount`). `dlq:read`.
     */
    groups: {
      rest: "GET /groups",
      list: "page",
      permissions: ["dlq:read"],
      params: {
        status: { type: "enum", values: [...DEAD_LETTER_STATUSES], default: "PENDING" },
        ...filterParams,
        ...pageParams(MAX_STATS_PAGE),
        $$strict: true,
      },
      async handler(this: DlqThis, ctx: Context<DeadLetterFilter & PageQuery>): Promise<Page<DeadLetterGroup>> {
        const where = whereOf(ctx.params);
        const groups = await this.rows<DeadLetterGroup & { firstSeen: Date; lastSeen: Date }>(
          `SELECT fingerprint, channel, consumer_group AS "group", error_type AS "errorType", error_summary AS summary,
             count(*)::int AS count, min(first_failed_at) AS "firstSeen", max(failed_at) AS "lastSeen",
             (array_agg(id ORDER BY failed_at DESC, id))[1] AS "sampleId",
             (array_agg(error ORDER BY failed_at DESC, id))[1] AS "sampleError",
             COALESCE((array_agg(DISTINCT message->'payload'->'order'->>'id')
               FILTER (WHERE message->'payload'->'order'->>'id' IS NOT NULL))[1:20], '{}') AS orders
           FROM dead_letters WHERE ${where.sql}
           GROUP BY fingerprint, channel, consumer_group, error_type, error_summary
           ORDER BY count DESC, "lastSeen" DESC, fingerprint`,
          where.bind,
        );
        const rows = groups.map((group) => ({
          ...group,
          firstSeen: group.firstSeen.toISOString(),
          lastSeen: group.lastSeen.toISOString(),
        }));
        return pageOf(rows, ctx.params);
      },
    },

    /** Entries per channel, consumer group and status (all of them unless paged), for dashboards. `dlq:read`. */
    stats: {
      rest: "GET /stats",
      list: "page",
      permissions: ["dlq:read"],
      params: { ...pageParams(MAX_STATS_PAGE), $$strict: true },
      async handler(this: DlqThis, ctx: Context<PageQuery>): Promise<Page<DeadLetterCount>> {
        const counts = await this.rows<DeadLetterCount>(
          `SELECT channel, consumer_group AS "group", status, count(*)::int AS count FROM dead_letters
           GROUP BY channel, consumer_group, status ORDER BY channel, consumer_group, status`,
          [],
        );
        return pageOf(counts, ctx.params);
      },
    },

    /**
     * A dry run of a replay operation: how many letters it would replay, and the first of them, changing nothing. The
     * operator confirms that count to start it. 409 above 1000. `dlq:read`.
     */
    previewReplay: {
      rest: "GET /replays/preview",
      permissions: ["dlq:read"],
      params: selectionParams,
      async handler(this: DlqThis, ctx: Context<ReplayParams>) {
        const ids = await this.selectionIds(ctx.params);
        return { count: ids.length, selection: ctx.params, firstIds: ids.slice(0, 20) };
      },
    },

    /**
     * Starts a replay operation: the selection's letters are frozen as they are now, then sent by the server at
     * `ratePerSecond`, each with its result (sent, or skipped and why); it goes on after a reload or a restart, and
     * can be cancelled. `expectedCount` is the count the operator confirmed: another count is 409 and nothing starts.
     * 202 with the operation; follow it at `GET /api/dlq/replays/:id`. `dlq:replay`.
     */
    startReplay: {
      audit: { entity: "replayOperation" },
      rest: "POST /replays",
      status: 202,
      permissions: ["dlq:replay"],
      params: {
        ...selectionParams,
        expectedCount: { type: "number", integer: true, positive: true, max: MAX_BATCH },
        ratePerSecond: { type: "number", integer: true, positive: true, max: 100, default: DEFAULT_REPLAY_RATE },
      },
      async handler(
        this: DlqThis,
        ctx: Context<ReplayParams & { expectedCount: number; ratePerSecond: number }, CallerMeta>,
      ): Promise<ReplayOperation> {
        const { expectedCount, ratePerSecond, ...selection } = ctx.params;
        const actor = actorOf(ctx.meta.caller);
        const id = randomUUID();
        await this.sequelize.transaction(async (transaction) => {
          const ids = await this.selectionIds(selection, transaction);
          if (ids.length !== expectedCount) {
            throw new ConflictError(
              `${ids.length} entries match, not ${expectedCount}; reload and confirm`,
              "CONFLICT",
              {
                expectedCount,
                actualCount: ids.length,
              },
            );
          }
          await this.rows(
            `INSERT INTO replay_operations (id, selection, total, rate_per_second, started_by) VALUES ($1, $2, $3, $4, $5)`,
            [id, storableJson(selection), ids.length, ratePerSecond, actor],
            { transaction },
          );
          await this.rows(
            `INSERT INTO replays (id, dead_letter_id, operation_id, position, state)
             SELECT gen_random_uuid(), letter, $1, position, 'WAITING' FROM unnest($2::uuid[]) WITH ORDINALITY AS t(letter, position)`,
            [id, ids],
            { transaction },
          );
        });
        this.logger.info(`Replay operation ${id} of ${expectedCount} dead letters started by ${actor}`);
        this.runReplays();
        return this.findReplayOperation(id);
      },
    },

    /** Replay operations, newest first, with their progress and outcomes. `dlq:read`. */
    replayOperations: {
      rest: "GET /replays",
      list: "page",
      permissions: ["dlq:read"],
      params: { ...pageParams(MAX_PAGE_SIZE, 20), $$strict: true },
      async handler(this: DlqThis, ctx: Context<PageQuery>): Promise<Page<ReplayOperation>> {
        const page = await selectPage<ReplayOperationRow, ReplayOperationRow>(
          this.rows,
          { table: "replay_operations", where: "true", order: "started_at DESC, id", bind: [] },
          ctx.params.page,
          ctx.params.pageSize,
          (row) => row,
        );
        return { ...page, rows: await this.replayOperations(page.rows) };
      },
    },

    /** One replay operation: its selection, who started it, its progress and what became of the letters sent. */
    replayOperation: {
      rest: "GET /replays/:id",
      permissions: ["dlq:read"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: DlqThis, ctx: Context<{ id: string }>): Promise<ReplayOperation> {
        return this.findReplayOperation(ctx.params.id);
      },
    },

    /**
     * A replay operation's letters in their order, each with its state, why it was skipped, and its outcome; an
     * unknown operation has none (as an unknown stream has no events). `dlq:read`.
     */
    replayOperationLetters: {
      rest: "GET /replays/:id/letters",
      list: "page",
      permissions: ["dlq:read"],
      params: { id: { type: "uuid" }, ...pageParams(MAX_PAGE_SIZE, 50), $$strict: true },
      async handler(this: DlqThis, ctx: Context<{ id: string } & PageQuery>): Promise<Page<Replay>> {
        const query = { table: "replays", where: "operation_id = $1", order: "position", bind: [ctx.params.id] };
        return selectPage(this.rows, query, ctx.params.page, ctx.params.pageSize, toReplay);
      },
    },

    /**
     * Cancels a running replay operation: the letters not sent yet are left as they are (pending) and marked
     * cancelled in it; those sent stay sent. 409 for one that has ended. `dlq:replay`.
     */
    cancelReplay: {
      audit: { entity: "replayOperation" },
      rest: "POST /replays/:id/cancel",
      permissions: ["dlq:replay"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: DlqThis, ctx: Context<{ id: string }, CallerMeta>): Promise<ReplayOperation> {
        const actor = actorOf(ctx.meta.caller);
        const cancelled = await this.sequelize.transaction(async (transaction) => {
          // Waits for a letter being sent now (the runner holds the operation's row while it sends).
          const [row] = await this.rows<{ id: string }>(
            `UPDATE replay_operations SET status = 'CANCELLED', cancelled_by = $2, finished_at = now()
             WHERE id = $1 AND status = 'RUNNING' RETURNING id`,
            [ctx.params.id, actor],
            { transaction },
          );
          if (!row) return false;
          await this.rows(
            "UPDATE replays SET state = 'CANCELLED' WHERE operation_id = $1 AND state = 'WAITING'",
            [ctx.params.id],
            { transaction },
          );
          return true;
        });
        const operation = await this.findReplayOperation(ctx.params.id);
        if (!cancelled) {
          throw new ConflictError(`Replay operation ${operation.id} has ended`, "CONFLICT", {
            id: operation.id,
            status: operation.status,
          });
        }
        this.logger.info(`Replay operation ${operation.id} cancelled by ${actor}`);
        return operation;
      },
    },

    /** One dead letter: the message, the last error and every failure, and its replays with their outcomes. */
    get: {
      rest: "GET /:id",
      permissions: ["dlq:read"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: DlqThis, ctx: Context<{ id: string }>): Promise<DeadLetter & { replays: Replay[] }> {
        const entry = toDeadLetter(await this.findEntry(ctx.params.id));
        const replays = await this.rows<ReplayRow>(
          "SELECT * FROM replays WHERE dead_letter_id = $1 ORDER BY replayed_at NULLS LAST, id",
          [ctx.params.id],
        );
        return { ...entry, replays: replays.map(toReplay) };
      },
    },

    /**
     * Sends the message back to its original channel (the other consumer groups of that channel processed it
     * already, so their inboxes drop it). 409 for an entry that is resolved, discarded or not replayable (it was
     * never a valid envelope). `dlq:replay`.
     */
    replay: {
      audit: { entity: "deadLetter" },
      rest: "POST /:id/replay",
      permissions: ["dlq:replay"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: DlqThis, ctx: Context<{ id: string }, CallerMeta>): Promise<DeadLetter> {
        const actor = actorOf(ctx.meta.caller);
        const row = await this.sequelize.transaction((transaction) =>
          this.replayLetter(ctx.params.id, actor, transaction),
        );
        this.logger.info(`Dead letter ${row.id} replayed to ${row.channel} by ${actor}`);
        await this.refreshDepth();
        return toDeadLetter(row);
      },
    },

    /** Discards an entry (kept, marked DISCARDED with who, when and why; in the audit trail). `dlq:discard`. */
    discard: {
      audit: { entity: "deadLetter" },
      rest: "DELETE /:id",
      permissions: ["dlq:discard"],
      params: {
        id: { type: "uuid" },
        // Why it is given up on, for whoever finds it later: required.
        reason: { type: "string", trim: true, min: 1, max: 500 },
        $$strict: true,
      },
      async handler(this: DlqThis, ctx: Context<{ id: string; reason: string }, CallerMeta>): Promise<DeadLetter> {
        const actor = actorOf(ctx.meta.caller);
        const [row] = await this.rows<DeadLetterRow>(
          `UPDATE dead_letters SET status = 'DISCARDED', discarded_at = now(), discarded_by = $2, discard_reason = $3,
             updated_at = now()
           WHERE id = $1 AND status <> 'DISCARDED' RETURNING *`,
          [ctx.params.id, actor, ctx.params.reason],
        );
        if (!row) {
          const existing = await this.findEntry(ctx.params.id);
          throw new ConflictError(`Dead letter ${existing.id} is already discarded`, "CONFLICT", { id: existing.id });
        }
        this.logger.warn(`Dead letter ${row.id} (${row.channel}, ${row.consumer_group}) discarded by ${actor}`);
        await this.refreshDepth();
        return toDeadLetter(row);
      },
    },
  },

  methods: {
    async findEntry(this: DlqThis, id: string) {
      const [row] = await this.rows<DeadLetterRow>("SELECT * FROM dead_letters WHERE id = $1", [id]);
      if (!row) throw new NotFoundError("Dead letter", id);
      return row;
    },

    /**
     * Marks the entry REPLAYED, records the replay (as `replayId`, a waiting place in an operation, or a new row) and
     * publishes the message, in the caller's transaction: a publish that fails rolls the mark back, and a
     * `message.recovered` that arrives quickly waits for the mark instead of being overwritten by it.
     */
    async replayLetter(this: DlqThis, id: string, actor: string, transaction: Transaction, replayId?: string) {
      const [entry] = await this.rows<DeadLetterRow>("SELECT * FROM dead_letters WHERE id = $1 FOR UPDATE", [id], {
        transaction,
      });
      if (!entry) throw new NotFoundError("Dead letter", id);
      if (!entry.replayable) {
        throw new ConflictError("This message was never a valid envelope; it cannot be replayed", "CONFLICT", {
          id,
          reason: "notReplayable",
        });
      }
      if (entry.status === "RESOLVED" || entry.status === "DISCARDED") {
        throw new ConflictError(`Dead letter ${id} is ${entry.status.toLowerCase()}`, "CONFLICT", {
          id,
          status: entry.status,
        });
      }
      const [updated] = await this.rows<DeadLetterRow>(
        `UPDATE dead_letters SET status = 'REPLAYED', replay_count = replay_count + 1, last_replayed_at = now(),
           last_replayed_by = $2, updated_at = now() WHERE id = $1 RETURNING *`,
        [id, actor],
        { transaction },
      );
      await this.rows(
        `INSERT INTO replays (id, dead_letter_id, state, attempt, replayed_by, replayed_at, outcome)
         VALUES ($2, $1, 'SENT', $3, $4, now(), 'PENDING')
         ON CONFLICT (id) DO UPDATE SET state = 'SENT', attempt = $3, replayed_by = $4, replayed_at = now(),
           outcome = 'PENDING'`,
        [id, replayId ?? randomUUID(), updated.replay_count, actor],
        { transaction },
      );
      await this.broker.sendToChannel(entry.channel, entry.message, {
        // A new JetStream message id, or the duplicate window would drop the replay as a copy of the original.
        headers: { [REPLAY_HEADER]: id, "Nats-Msg-Id": `${entry.message_id}:replay:${id}:${updated.replay_count}` },
      });
      return updated;
    },

    /** The letters a replay selection takes now, oldest failure first; 409 above the most one operation acts on. */
    async selectionIds(this: DlqThis, selection: ReplayParams, transaction?: Transaction) {
      const where = whereOf(selectionFilter(selection));
      const ids = await this.rows<{ id: string }>(
        `SELECT id FROM dead_letters WHERE ${where.sql} AND replayable ORDER BY failed_at, id LIMIT ${MAX_BATCH + 1}`,
        where.bind,
        { transaction },
      );
      if (ids.length > MAX_BATCH) {
        throw new ConflictError(`More than ${MAX_BATCH} entries match; narrow the filter`, "CONFLICT", {
          limit: MAX_BATCH,
        });
      }
      return ids.map((row) => row.id);
    },

    /** Operations with their letters counted by state and outcome (one statement for all of them). */
    async replayOperations(this: DlqThis, rows: ReplayOperationRow[]) {
      const counts = await this.rows<{ operation_id: string } & Record<string, number>>(
        `SELECT operation_id,
           count(*) FILTER (WHERE state = 'WAITING')::int AS waiting, count(*) FILTER (WHERE state = 'SENT')::int AS sent,
           count(*) FILTER (WHERE state = 'SKIPPED')::int AS skipped,
           count(*) FILTER (WHERE state = 'CANCELLED')::int AS cancelled,
           count(*) FILTER (WHERE outcome = 'PENDING')::int AS pending,
           count(*) FILTER (WHERE outcome = 'RESOLVED')::int AS resolved,
           count(*) FILTER (WHERE outcome = 'FAILED')::int AS failed
         FROM replays WHERE operation_id = ANY($1::uuid[]) GROUP BY operation_id`,
        [rows.map((row) => row.id)],
      );
      const byOperation = new Map(
        counts.map((count) => [
          count.operation_id,
          {
            progress: { waiting: count.waiting, sent: count.sent, skipped: count.skipped, cancelled: count.cancelled },
            outcomes: { pending: count.pending, resolved: count.resolved, failed: count.failed },
          },
        ]),
      );
      return rows.map((row) => toReplayOperation(row, byOperation.get(row.id)));
    },

    async findReplayOperation(this: DlqThis, id: string) {
      const rows = await this.rows<ReplayOperationRow>("SELECT * FROM replay_operations WHERE id = $1", [id]);
      if (!rows[0]) throw new NotFoundError("Replay operation", id);
      return (await this.replayOperations(rows))[0];
    },

    /**
     * Sends the next letter of one running operation whose turn has come (its rate sets the next turn), or ends an
     * operation with none left. The operation's row is held meanwhile, so two dlq nodes never take the same turn and a
     * cancel waits for the letter being sent. False when no operation was due.
     */
    async replayNextDue(this: DlqThis) {
      return this.sequelize.transaction(async (transaction) => {
        const [operation] = await this.rows<{ id: string; started_by: string }>(
          `SELECT id, started_by FROM replay_operations WHERE status = 'RUNNING' AND next_due_at <= now()
           ORDER BY next_due_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
          [],
          { transaction },
        );
        if (!operation) return false;
        const [turn] = await this.rows<{ id: string; dead_letter_id: string }>(
          "SELECT id, dead_letter_id FROM replays WHERE operation_id = $1 AND state = 'WAITING' ORDER BY position LIMIT 1",
          [operation.id],
          { transaction },
        );
        if (turn) {
          try {
            await this.replayLetter(turn.dead_letter_id, operation.started_by, transaction, turn.id);
          } catch (err) {
            // The letter changed since the selection was frozen: resolved, discarded, or gone.
            if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
            await this.rows(
              "UPDATE replays SET state = 'SKIPPED', detail = $2 WHERE id = $1",
              [turn.id, (err as Error).message],
              { transaction },
            );
          }
        }
        await this.rows(
          `UPDATE replay_operations SET next_due_at = now() + interval '1 second' / rate_per_second,
             status = CASE WHEN waiting.any THEN status ELSE 'DONE' END,
             finished_at = CASE WHEN waiting.any THEN NULL ELSE now() END
           FROM (SELECT EXISTS (SELECT 1 FROM replays WHERE operation_id = $1 AND state = 'WAITING') AS any) AS waiting
           WHERE id = $1`,
          [operation.id],
          { transaction },
        );
        if (turn) transaction.afterCommit(() => this.refreshDepth());
        return true;
      });
    },

    /**
     * The replay runner: takes every turn that is due, then sleeps until the next one (or polls, for operations
     * started elsewhere). Called again when an operation starts here, to begin at once. Like every publisher, it
     * waits for the node's consumers to have subscribed: a letter sent before (an operation resumed at start) would
     * reach no one on the in-memory channels, and its outcome would stay pending.
     */
    runReplays(this: DlqThis) {
      clearTimeout(this.replayTimer);
      if (this.replayStopped) return;
      const turn = async () => {
        let delayMs = REPLAY_IDLE_POLL_MS;
        try {
          while (!this.replayStopped && channelsReady(this.broker) && (await this.replayNextDue()));
          const [next] = await this.rows<{ in_ms: number | null }>(
            `SELECT (extract(epoch FROM min(next_due_at) - now()) * 1000)::int AS in_ms
             FROM replay_operations WHERE status = 'RUNNING'`,
            [],
          );
          if (next.in_ms !== null) delayMs = Math.min(Math.max(next.in_ms, 5), REPLAY_IDLE_POLL_MS);
        } catch (err) {
          this.logger.warn(`Replay operations: ${(err as Error).message}; trying again`);
        }
        clearTimeout(this.replayTimer);
        if (!this.replayStopped) this.replayTimer = setTimeout(() => this.runReplays(), delayMs);
      };
      // One turn at a time: a wake-up during a turn runs after it.
      this.replayTurn = (this.replayTurn ?? Promise.resolve()).then(turn);
    },

    async refreshDepth(this: DlqThis) {
      const counts = await this.rows<{ channel: string; count: number }>(
        "SELECT channel, count(*)::int AS count FROM dead_letters WHERE status = 'PENDING' GROUP BY channel",
      );
      const seen = new Set(this.depthChannels);
      for (const { channel, count } of counts) {
        this.broker.metrics.set(DEPTH_METRIC, count, { channel });
        this.depthChannels.add(channel);
        seen.delete(channel);
      }
      for (const channel of seen) this.broker.metrics.set(DEPTH_METRIC, 0, { channel });
    },
  },
};

export default DlqService;
