/**
 * logs (Service 4, Log DB): the log store. Every node's log shipper (lib/log-shipper.ts) publishes batches of records
 * on the `log.batch` channel; this service stores them, turns each record at error level and above into a `log.error`
 * event on the bus (through its outbox, in the same transaction), answers searches, and removes records older than
 * `LOG_RETENTION_DAYS` every hour. It is also the span store: with `TRACING_EXPORTER=event`, every node's finished
 * spans arrive as `$tracing.spans` events and a whole trace can be read back by its id (the request id).
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { escapeLike, selectPage } from "../lib/database";
import { CURSOR_PARAM, cursorPage, pageParams } from "../lib/paging";
import type { Transaction } from "sequelize";
import { NotFoundError } from "../lib/errors";
import { deterministicId } from "../lib/delivery";
import { createEnvelope, type EventEnvelope } from "../lib/events";
import { SPANS_EVENT, toStoredSpan, type ExportedSpan } from "../lib/spans";
import type { LogPage, LogTailPage, ShippedLogRecord, StoredSpan, Trace } from "../contracts/logs";

import logMigrations from "../migrations/logs";
import { consumerMixin } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { storableJson } from "../lib/storable";
import { toRecord, toSpan, type LogRow, type SpanRow } from "../lib/log-rows";

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

/** The filters of both `logs.list` and `logs.tail`. */
const filterParams = {
  level: { type: "enum", values: LEVELS, optional: true },
  service: { type: "string", max: 200, optional: true },
  node: { type: "string", max: 200, optional: true },
  requestId: { type: "string", max: 200, optional: true },
  search: { type: "string", min: 1, max: 200, optional: true },
  from: { type: "date", convert: true, optional: true },
  to: { type: "date", convert: true, optional: true },
} as const;
type LogFilter = ParamsOf<typeof filterParams>;

/** The WHERE clause of the filters, binding `$1…$7`. */
function whereOf(p: LogFilter): { sql: string; bind: unknown[] } {
  const levels = p.level ? LEVELS.slice(0, LEVELS.indexOf(p.level) + 1) : null;
  const search = p.search ? `%${escapeLike(p.search)}%` : null;
  const sql = `($1::text[] IS NULL OR level = ANY($1)) AND ($2::text IS NULL OR module = $2)
    AND ($3::text IS NULL OR node_id = $3) AND ($4::text IS NULL OR request_id = $4)
    AND ($5::text IS NULL OR message ILIKE $5 OR fields::text ILIKE $5)
    AND ($6::timestamptz IS NULL OR time >= $6) AND ($7::timestamptz IS NULL OR time <= $7)`;
  return { sql, bind: [levels, p.service, p.node, p.requestId, search, p.from, p.to].map((v) => v ?? null) };
}

const ALARMING = new Set(["fatal", "error"]);
const MAX_PAGE_SIZE = 200;

const listParams = paramsSchema({
  ...filterParams,
  ...pageParams(MAX_PAGE_SIZE, 50),
  $$strict: true,
});
const tailParams = paramsSchema({
  ...filterParams,
  after: CURSOR_PARAM,
  pageSize: { type: "number", integer: true, positive: true, max: MAX_PAGE_SIZE, convert: true, default: 50 },
  $$strict: true,
});
const traceParams = paramsSchema({ traceId: { type: "string", min: 1, max: 200 }, $$strict: true });
const RETENTION_EVERY_MS = 60 * 60_000;
const MAX_TRACE_SPANS = 2000;

interface LogsMethods {
  /** Stores spans in one statement; text PostgreSQL cannot store is escaped (lib/storable.ts). */
  storeSpans(spans: StoredSpan[]): Promise<void>;
  removeExpired(): Promise<number>;
}

type LogsThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  LogsMethods &
  OutboxMethods & { retentionTimer?: NodeJS.Timeout; spansClosed?: boolean };

/** Stores a batch in one statement, and raises `log.error` for its error records, in the consumer's transaction. */
async function storeBatch(this: LogsThis, envelope: EventEnvelope, transaction: Transaction) {
  const { records, dropped, nodeId } = envelope.payload as {
    records: ShippedLogRecord[];
    dropped: number;
    nodeId: string;
  };
  if (records.length > 0) {
    await this.rows(
      `INSERT INTO log_records (time, level, node_id, module, request_id, message, fields)
       SELECT r.time, r.level, r."nodeId", r.module, r."requestId", r.message, r.fields
       FROM jsonb_to_recordset($1::jsonb) AS r(time timestamptz, level text, "nodeId" text, module text,
         "requestId" text, message text, fields jsonb)`,
      [storableJson(records)],
      { transaction },
    );
  }
  if (dropped > 0) {
    this.logger.warn(`Node ${nodeId} dropped ${dropped} log record(s): its buffer was full`);
    transaction.afterCommit(() => this.broker.metrics.increment("aicunet.logs.dropped", { node: nodeId }, dropped));
  }
  for (const [index, record] of records.entries()) {
    if (!ALARMING.has(record.level)) continue;
    const event = createEnvelope(
      "log.error",
      { record },
      { source: "logs", correlationId: record.requestId ?? envelope.id },
    );
    event.id = deterministicId("log.error", envelope.id, index);
    await this.enqueueEvent(transaction, event);
  }
}

const LogsService: ServiceSchema<
  DbSettings,
  DbMethods & LogsMethods & OutboxMethods,
  DbServiceThis & { retentionTimer?: NodeJS.Timeout }
> = {
  name: "logs",
  mixins: [
    outboxMixin(),
    dbMixin({
      service: "logs",
      migrations: logMigrations,
    }),
    consumerMixin<LogsThis>({ group: "logs", handlers: { "log.batch": storeBatch } }),
  ],

  created(this: LogsThis) {
    this.broker.metrics.register({
      type: "counter",
      name: "aicunet.logs.dropped",
      labelNames: ["node"],
      description: "Log records nodes dropped because their shipping buffer was full (the log store slow or away)",
    });
  },

  async started(this: LogsThis) {
    this.retentionTimer = setInterval(() => {
      this.removeExpired().catch((err) => this.logger.warn(`Log retention: ${(err as Error).message}`));
    }, RETENTION_EVERY_MS);
    this.retentionTimer.unref();
  },

  async stopped(this: LogsThis) {
    clearInterval(this.retentionTimer);
    // The tracer flushes its last spans after the services have stopped, when the pool is gone: those are dropped.
    this.spansClosed = true;
  },

  events: {
    [SPANS_EVENT]: {
      // Storing spans makes no spans of its own, or every batch would feed the next.
      tracing: false,
      async handler(this: LogsThis, ctx: Context<ExportedSpan[]>) {
        if (!Array.isArray(ctx.params) || this.spansClosed) return;
        const spans = ctx.params.flatMap((span) => {
          try {
            return [toStoredSpan(span)];
          } catch (err) {
            this.logger.warn(`Span ${String(span?.id)} dropped: ${(err as Error).message}`);
            return [];
          }
        });
        if (spans.length === 0) return;
        try {
          await this.storeSpans(spans);
        } catch {
          // The batch holds spans of many requests and nodes: one the database refuses must not take the others
          // with it, so they are stored one by one and only the refused one is dropped.
          for (const span of spans) {
            await this.storeSpans([span]).catch((err: Error) =>
              this.logger.warn(`Span ${span.spanId} of trace ${span.traceId} dropped: ${err.message}`),
            );
          }
        }
      },
    },
  },

  actions: {
    /** Log records, newest first: by level (and above), service (module), node, request id, text and time. `logs:read`. */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["logs:read"],
      params: listParams,
      async handler(this: LogsThis, ctx: Context<ParamsOf<typeof listParams>>): Promise<LogPage> {
        const { sql, bind } = whereOf(ctx.params);
        const query = { table: "log_records", where: sql, order: "id DESC", bind };
        return selectPage(this.rows, query, ctx.params.page, ctx.params.pageSize, toRecord);
      },
    },

    /**
     * The records stored after `after` (a cursor: the last record's id), oldest first, with the filters of `list`:
     * for a live tail that polls (the gateway's `GET /api/logs/stream` is one). `logs:read`.
     */
    tail: {
      rest: "GET /tail",
      list: "cursor",
      permissions: ["logs:read"],
      params: tailParams,
      async handler(this: LogsThis, ctx: Context<ParamsOf<typeof tailParams>>): Promise<LogTailPage> {
        const { after, pageSize } = ctx.params;
        const { sql, bind } = whereOf(ctx.params);
        const rows = await this.rows<LogRow>(
          `SELECT * FROM log_records WHERE ${sql} AND id > $8 ORDER BY id LIMIT $9`,
          [...bind, after, pageSize + 1],
        );
        return cursorPage(rows.map(toRecord), pageSize, after, (record) => record.id);
      },
    },

    /** One trace: every stored span with this trace id (the request id), in the order they started. `logs:read`. */
    trace: {
      rest: "GET /traces/:traceId",
      permissions: ["logs:read"],
      params: traceParams,
      async handler(this: LogsThis, ctx: Context<ParamsOf<typeof traceParams>>): Promise<Trace> {
        const rows = await this.rows<SpanRow>(
          "SELECT * FROM spans WHERE trace_id = $1 ORDER BY started_at, span_id LIMIT $2",
          [ctx.params.traceId, MAX_TRACE_SPANS],
        );
        if (rows.length === 0) throw new NotFoundError("Trace", ctx.params.traceId);
        return { traceId: ctx.params.traceId, spans: rows.map(toSpan) };
      },
    },
  },

  methods: {
    async storeSpans(this: LogsThis, spans: StoredSpan[]): Promise<void> {
      await this.rows(
        `INSERT INTO spans (trace_id, span_id, parent_id, name, type, service, node_id, started_at, duration_ms,
           error, tags)
         SELECT s."traceId", s."spanId", s."parentId", s.name, s.type, s.service, s."nodeId", s."startedAt",
           s."durationMs", s.error, coalesce(s.tags, '{}')
         FROM jsonb_to_recordset($1::jsonb) AS s("traceId" text, "spanId" text, "parentId" text, name text,
           type text, service text, "nodeId" text, "startedAt" timestamptz, "durationMs" double precision,
           error text, tags jsonb)
         ON CONFLICT DO NOTHING`,
        [storableJson(spans)],
      );
    },

    /** Removes records (and spans) older than the retention; returns how many records. */
    async removeExpired(this: LogsThis): Promise<number> {
      const [, removed] = (await this.sequelize.query(
        "DELETE FROM log_records WHERE time < now() - make_interval(days => $1)",
        { bind: [this.settings.config.log.retentionDays] },
      )) as [unknown, { rowCount?: number } | number];
      await this.rows("DELETE FROM spans WHERE started_at < now() - make_interval(days => $1)", [
        this.settings.config.log.retentionDays,
      ]);
      return typeof removed === "number" ? removed : (removed?.rowCount ?? 0);
    },
  },
};

export default LogsService;
