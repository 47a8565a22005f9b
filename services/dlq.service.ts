/**
 * dlq: the dead-letter queue. Every consumer group that gives up on a message publishes a `message.deadLettered`
 * record (mixins/consumer.mixin.ts); this service keeps them in its own database where operators list, search and
 * inspect them, replay them to their original channel once the cause is fixed, or discard them. A replayed message
 * that is then processed reports `message.recovered`, which resolves its entry; one that fails again reopens it.
 * DLQ depth (pending entries) is exported per channel as the `aicunet.dlq.depth` gauge.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { selectPage } from "../lib/database";
import { pageOf, pageParams, type Page, type PageQuery } from "../lib/paging";
import { DataTypes, QueryTypes, type Transaction } from "sequelize";
import { REPLAY_HEADER, type ErrorRecord } from "../lib/delivery";
import { ConflictError, NotFoundError } from "../lib/errors";
import type { EventEnvelope } from "../lib/events";
import type { Caller } from "../lib/permissions";
import dlqMigrations from "../migrations/dlq";
import type { CallerMeta } from "../middlewares/permissions.middleware";
import { consumerMixin, type ConsumerThis, type UnprocessableMessage } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { storableJson, storableText } from "../lib/storable";

export const DEAD_LETTER_STATUSES = ["PENDING", "REPLAYED", "RESOLVED", "DISCARDED"] as const;
export type DeadLetterStatus = (typeof DEAD_LETTER_STATUSES)[number];

export interface DeadLetterFailure {
  deadLetterId: string;
  attempts: number;
  error: ErrorRecord;
  failedAt: string;
}

export interface DeadLetter {
  id: string;
  channel: string;
  group: string;
  messageId: string | null;
  message: unknown;
  replayable: boolean;
  status: DeadLetterStatus;
  attempts: number;
  error: ErrorRecord;
  /** Every time the message was given up on: the first failure, then one per replay that failed again. */
  failures: DeadLetterFailure[];
  correlationId: string | null;
  replayCount: number;
  lastReplayedAt: string | null;
  lastReplayedBy: string | null;
  resolvedAt: string | null;
  discardedAt: string | null;
  discardedBy: string | null;
  discardReason: string | null;
  firstFailedAt: string;
  failedAt: string;
  /** The failure's fingerprint: channel, consumer group, error type and summary (migration 0004); its group's key. */
  fingerprint: string;
  /** The error's first field message or its message, ids and numbers replaced: what the group says. */
  errorSummary: string;
}

export type DeadLetterPage = Page<DeadLetter>;

/** Dead letters that failed the same way (one fingerprint): `GET /api/dlq/groups`. */
export interface DeadLetterGroup {
  fingerprint: string;
  channel: string;
  group: string;
  errorType: string;
  summary: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** The group's latest dead letter, and its error in full (the `data` names the fields and the action). */
  sampleId: string;
  sampleError: ErrorRecord;
  /** The orders its messages were about, up to 20. */
  orders: string[];
}

/** One row of `GET /api/dlq/stats`. */
export interface DeadLetterCount {
  channel: string;
  group: string;
  status: DeadLetterStatus;
  count: number;
}

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

export interface DeadLetterFilter {
  status?: DeadLetterStatus;
  channel?: string;
  group?: string;
  errorType?: string;
  from?: Date;
  to?: Date;
  /** Text inside the message or the error. */
  search?: string;
  /** One group's failures (`DeadLetterGroup.fingerprint`). */
  fingerprint?: string;
}

const MAX_PAGE_SIZE = 100;
/** Channels × groups × statuses: a few dozen rows, which the dashboards and alerts read whole. */
const MAX_STATS_PAGE = 1000;
/** Most entries one batch replay acts on; a larger selection is refused so the operator narrows it. */
const MAX_BATCH = 1000;
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

/** Who did it, for the record: a user or client id, or "system". */
function actorOf(caller: Caller | undefined): string {
  return caller && "id" in caller ? `${caller.type}:${caller.id}` : (caller?.type ?? "unknown");
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
    filter.search ? `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null,
    filter.fingerprint ?? null,
  ];
  const n = (i: number) => `$${firstBind + i}`;
  const sql = `(${n(0)}::text IS NULL OR status = ${n(0)}) AND (${n(1)}::text IS NULL OR channel = ${n(1)})
    AND (${n(2)}::text IS NULL OR consumer_group = ${n(2)}) AND (${n(3)}::text IS NULL OR error_type = ${n(3)})
    AND (${n(4)}::timestamptz IS NULL OR failed_at >= ${n(4)}) AND (${n(5)}::timestamptz IS NULL OR failed_at <= ${n(5)})
    AND (${n(6)}::text IS NULL OR message::text ILIKE ${n(6)} OR error::text ILIKE ${n(6)})
    AND (${n(7)}::text IS NULL OR fingerprint = ${n(7)})`;
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
} as const;

interface DlqMethods {
  rows(sql: string, bind: unknown[], transaction?: Transaction): Promise<DeadLetterRow[]>;
  findEntry(id: string): Promise<DeadLetterRow>;
  replayEntry(id: string, caller: Caller | undefined): Promise<DeadLetter>;
  refreshDepth(): Promise<void>;
}

type DlqThis = Service<DbSettings> & DbServiceThis & DlqMethods & { depthChannels: Set<string> };

const DlqService: ServiceSchema<DbSettings, DbMethods & DlqMethods, DbServiceThis & { depthChannels: Set<string> }> = {
  name: "dlq",
  mixins: [
    dbMixin({
      service: "dlq",
      migrations: dlqMigrations,
      model: {
        name: "deadLetter",
        define: { id: { type: DataTypes.UUID, primaryKey: true } },
        options: { tableName: "dead_letters", timestamps: false },
      },
    }),
    consumerMixin({
      group: "dlq",
      /**
       * A dead letter (or recovery notice) this service cannot store as a record is stored as the text that arrived,
       * not replayable: a dead letter about it would come back here and fail the same way, without end.
       */
      async keepUnprocessable(this: ConsumerThis, message: UnprocessableMessage) {
        const failure: DeadLetterFailure = {
          deadLetterId: message.id,
          attempts: message.attempts,
          error: message.error,
          failedAt: new Date().toISOString(),
        };
        await this.sequelize.query(
          `INSERT INTO dead_letters (id, channel, consumer_group, message_id, message, replayable, attempts, error,
             error_type, failures, correlation_id, first_failed_at, failed_at)
           VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8, jsonb_build_array($9::jsonb), $10, now(), now())
           ON CONFLICT DO NOTHING`,
          {
            bind: [
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
          },
        );
        await (this as unknown as DlqThis).refreshDepth();
      },
      handlers: {
        /** Stores a dead letter, or reopens the entry of a message that failed again after a replay. */
        async "message.deadLettered"(this: ConsumerThis, envelope: EventEnvelope, transaction: Transaction) {
          const dead = envelope.payload as DeadLetteredPayload;
          const failure: DeadLetterFailure = {
            deadLetterId: envelope.id,
            attempts: dead.attempts,
            error: dead.error,
            failedAt: dead.failedAt,
          };
          await this.sequelize.query(
            `INSERT INTO dead_letters (id, channel, consumer_group, message_id, message, replayable, attempts, error,
               error_type, failures, correlation_id, first_failed_at, failed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, jsonb_build_array($10::jsonb), $11, $12, $12)
             ON CONFLICT (consumer_group, message_id) WHERE message_id IS NOT NULL AND status <> 'DISCARDED'
             DO UPDATE SET status = 'PENDING', attempts = dead_letters.attempts + EXCLUDED.attempts,
               error = EXCLUDED.error, error_type = EXCLUDED.error_type, message = EXCLUDED.message,
               failures = dead_letters.failures || EXCLUDED.failures, failed_at = EXCLUDED.failed_at,
               updated_at = now()`,
            {
              bind: [
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
              transaction,
            },
          );
          transaction.afterCommit(() => (this as unknown as DlqThis).refreshDepth());
        },

        /** A replayed message was processed by its group: its entry (and any other for it in that group) is resolved. */
        async "message.recovered"(this: ConsumerThis, envelope: EventEnvelope, transaction: Transaction) {
          const recovered = envelope.payload as RecoveredPayload;
          await this.sequelize.query(
            `UPDATE dead_letters SET status = 'RESOLVED', resolved_at = now(), updated_at = now()
             WHERE consumer_group = $1 AND message_id = $2 AND status IN ('PENDING', 'REPLAYED')`,
            { bind: [recovered.group, recovered.messageId], transaction },
          );
          transaction.afterCommit(() => (this as unknown as DlqThis).refreshDepth());
        },
      },
    }),
  ],

  created(this: DlqThis) {
    this.depthChannels = new Set();
    this.broker.metrics.register({
      type: "gauge",
      name: DEPTH_METRIC,
      labelNames: ["channel"],
      description: "Dead letters waiting for an operator (status PENDING), per original channel",
    });
  },

  async started(this: DlqThis) {
    await this.refreshDepth();
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
        return selectPage(this.sequelize, query, page, pageSize, toDeadLetter);
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
        const groups = await this.sequelize.query<DeadLetterGroup & { firstSeen: Date; lastSeen: Date }>(
          `SELECT fingerprint, channel, consumer_group AS "group", error_type AS "errorType", error_summary AS summary,
             count(*)::int AS count, min(first_failed_at) AS "firstSeen", max(failed_at) AS "lastSeen",
             (array_agg(id ORDER BY failed_at DESC, id))[1] AS "sampleId",
             (array_agg(error ORDER BY failed_at DESC, id))[1] AS "sampleError",
             COALESCE((array_agg(DISTINCT message->'payload'->'order'->>'id')
               FILTER (WHERE message->'payload'->'order'->>'id' IS NOT NULL))[1:20], '{}') AS orders
           FROM dead_letters WHERE ${where.sql}
           GROUP BY fingerprint, channel, consumer_group, error_type, error_summary
           ORDER BY count DESC, "lastSeen" DESC, fingerprint`,
          { bind: where.bind, type: QueryTypes.SELECT },
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
        const counts = await this.sequelize.query<DeadLetterCount>(
          `SELECT channel, consumer_group AS "group", status, count(*)::int AS count FROM dead_letters
           GROUP BY channel, consumer_group, status ORDER BY channel, consumer_group, status`,
          { type: QueryTypes.SELECT },
        );
        return pageOf(counts, ctx.params);
      },
    },

    /** One dead letter: the message, the last error and every failure, and its replays. `dlq:read`. */
    get: {
      rest: "GET /:id",
      permissions: ["dlq:read"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: DlqThis, ctx: Context<{ id: string }>): Promise<DeadLetter> {
        return toDeadLetter(await this.findEntry(ctx.params.id));
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
        return this.replayEntry(ctx.params.id, ctx.meta.caller);
      },
    },

    /**
     * Replays every pending entry that matches the filter and failed no later than `until` (the time the operator's
     * view was loaded), so what arrived since is left alone. With `expectedCount`, a different number of matches is
     * 409 and nothing is replayed. At most 1000 entries at once (409 above that). `dlq:replay`.
     */
    replayBatch: {
      audit: { entity: "deadLetter" },
      rest: "POST /replay",
      permissions: ["dlq:replay"],
      params: {
        ...filterParams,
        until: { type: "date", convert: true },
        expectedCount: { type: "number", integer: true, min: 0, optional: true },
        $$strict: true,
      },
      async handler(
        this: DlqThis,
        ctx: Context<Omit<DeadLetterFilter, "status"> & { until: Date; expectedCount?: number }, CallerMeta>,
      ) {
        const { until, expectedCount, ...filter } = ctx.params;
        const to = filter.to && filter.to < until ? filter.to : until;
        const where = whereOf({ ...filter, to, status: "PENDING" });
        const ids = await this.sequelize.query<{ id: string }>(
          `SELECT id FROM dead_letters WHERE ${where.sql} AND replayable ORDER BY failed_at LIMIT ${MAX_BATCH + 1}`,
          { bind: where.bind, type: QueryTypes.SELECT },
        );
        if (ids.length > MAX_BATCH) {
          throw new ConflictError(`More than ${MAX_BATCH} entries match; narrow the filter`, "CONFLICT", {
            limit: MAX_BATCH,
          });
        }
        if (expectedCount !== undefined && ids.length !== expectedCount) {
          throw new ConflictError(`${ids.length} entries match, not ${expectedCount}; reload and confirm`, "CONFLICT", {
            expectedCount,
            actualCount: ids.length,
          });
        }
        const replayed: string[] = [];
        for (const { id } of ids) {
          await this.replayEntry(id, ctx.meta.caller);
          replayed.push(id);
        }
        return { replayed: replayed.length, ids: replayed };
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
        const [row] = await this.rows(
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
    async rows(this: DlqThis, sql: string, bind: unknown[], transaction?: Transaction) {
      return this.sequelize.query<DeadLetterRow>(sql, { bind, type: QueryTypes.SELECT, transaction });
    },

    async findEntry(this: DlqThis, id: string) {
      const [row] = await this.rows("SELECT * FROM dead_letters WHERE id = $1", [id]);
      if (!row) throw new NotFoundError("Dead letter", id);
      return row;
    },

    /**
     * Marks the entry REPLAYED and publishes the message in one transaction: a publish that fails rolls the mark
     * back, and a `message.recovered` that arrives quickly waits for the mark instead of being overwritten by it.
     */
    async replayEntry(this: DlqThis, id: string, caller: Caller | undefined): Promise<DeadLetter> {
      const row = await this.sequelize.transaction(async (transaction) => {
        const [entry] = await this.rows("SELECT * FROM dead_letters WHERE id = $1 FOR UPDATE", [id], transaction);
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
        const [updated] = await this.rows(
          `UPDATE dead_letters SET status = 'REPLAYED', replay_count = replay_count + 1, last_replayed_at = now(),
             last_replayed_by = $2, updated_at = now() WHERE id = $1 RETURNING *`,
          [id, actorOf(caller)],
          transaction,
        );
        await this.broker.sendToChannel(entry.channel, entry.message, {
          // A new JetStream message id, or the duplicate window would drop the replay as a copy of the original.
          headers: { [REPLAY_HEADER]: id, "Nats-Msg-Id": `${entry.message_id}:replay:${id}:${updated.replay_count}` },
        });
        return updated;
      });
      this.logger.info(`Dead letter ${id} replayed to ${row.channel} by ${actorOf(caller)}`);
      await this.refreshDepth();
      return toDeadLetter(row);
    },

    async refreshDepth(this: DlqThis) {
      const counts = await this.sequelize.query<{ channel: string; count: number }>(
        "SELECT channel, count(*)::int AS count FROM dead_letters WHERE status = 'PENDING' GROUP BY channel",
        { type: QueryTypes.SELECT },
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
