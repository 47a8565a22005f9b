/**
 * Replay operations: many dead letters replayed as one operation, a selection frozen when it starts (previewed first,
 * confirmed by its count), sent by the replay runner (mixins/dlq-replay-runner.mixin.ts) at a bounded rate,
 * cancellable, and kept with a result per letter.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import type { CallerMeta } from "../contracts/caller";
import type { Replay, ReplayOperation } from "../contracts/dead-letters";
import { selectPage } from "../lib/database";
import { MAX_PAGE_SIZE, selectionFilter, selectionParams, whereOf, type ReplayParams } from "../lib/dead-letter-filter";
import { toReplay, toReplayOperation, type ReplayOperationRow } from "../lib/dead-letter-rows";
import { ConflictError, NotFoundError } from "../lib/errors";
import { pageParams, type Page } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { actorOf } from "../lib/permissions";
import { storableJson } from "../lib/storable";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";
import type { DlqReplayRunnerMethods } from "./dlq-replay-runner.mixin";

/** Most entries one replay operation acts on; a larger selection is refused so the operator narrows it. */
const MAX_BATCH = 1000;
/** Letters a replay operation sends per second unless asked otherwise: consumers get time to show the outcome. */
const DEFAULT_REPLAY_RATE = 10;

interface DlqReplayOperationMethods {
  selectionIds(selection: ReplayParams, transaction?: Transaction): Promise<string[]>;
  replayOperations(rows: ReplayOperationRow[]): Promise<ReplayOperation[]>;
  findReplayOperation(id: string): Promise<ReplayOperation>;
}

type ReplayOperationsThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  DlqReplayRunnerMethods &
  DlqReplayOperationMethods;

const startReplayParams = paramsSchema({
  ...selectionParams,
  expectedCount: { type: "number", integer: true, positive: true, max: MAX_BATCH },
  ratePerSecond: { type: "number", integer: true, positive: true, max: 100, default: DEFAULT_REPLAY_RATE },
});
const replayOperationsParams = paramsSchema({ ...pageParams(MAX_PAGE_SIZE, 20), $$strict: true });
const operationIdParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });
const operationLettersParams = paramsSchema({ id: { type: "uuid" }, ...pageParams(MAX_PAGE_SIZE, 50), $$strict: true });

export function dlqReplayOperationsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DlqReplayOperationMethods, object, ReplayOperationsThis>> = {
    actions: {
      /**
       * A dry run of a replay operation: how many letters it would replay, and the first of them, changing nothing. The
       * operator confirms that count to start it. 409 above 1000. `dlq:read`.
       */
      previewReplay: {
        rest: "GET /replays/preview",
        permissions: ["dlq:read"],
        params: selectionParams,
        async handler(this: ReplayOperationsThis, ctx: Context<ParamsOf<typeof selectionParams>>) {
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
        params: startReplayParams,
        async handler(
          this: ReplayOperationsThis,
          ctx: Context<ParamsOf<typeof startReplayParams>, CallerMeta>,
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
        params: replayOperationsParams,
        async handler(
          this: ReplayOperationsThis,
          ctx: Context<ParamsOf<typeof replayOperationsParams>>,
        ): Promise<Page<ReplayOperation>> {
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
        params: operationIdParams,
        async handler(
          this: ReplayOperationsThis,
          ctx: Context<ParamsOf<typeof operationIdParams>>,
        ): Promise<ReplayOperation> {
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
        params: operationLettersParams,
        async handler(
          this: ReplayOperationsThis,
          ctx: Context<ParamsOf<typeof operationLettersParams>>,
        ): Promise<Page<Replay>> {
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
        params: operationIdParams,
        async handler(
          this: ReplayOperationsThis,
          ctx: Context<ParamsOf<typeof operationIdParams>, CallerMeta>,
        ): Promise<ReplayOperation> {
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
    },

    methods: {
      /** The letters a replay selection takes now, oldest failure first; 409 above the most one operation acts on. */
      async selectionIds(this: ReplayOperationsThis, selection: ReplayParams, transaction?: Transaction) {
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
      async replayOperations(this: ReplayOperationsThis, rows: ReplayOperationRow[]) {
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
              progress: {
                waiting: count.waiting,
                sent: count.sent,
                skipped: count.skipped,
                cancelled: count.cancelled,
              },
              outcomes: { pending: count.pending, resolved: count.resolved, failed: count.failed },
            },
          ]),
        );
        return rows.map((row) => toReplayOperation(row, byOperation.get(row.id)));
      },

      async findReplayOperation(this: ReplayOperationsThis, id: string) {
        const rows = await this.rows<ReplayOperationRow>("SELECT * FROM replay_operations WHERE id = $1", [id]);
        if (!rows[0]) throw new NotFoundError("Replay operation", id);
        return (await this.replayOperations(rows))[0];
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
