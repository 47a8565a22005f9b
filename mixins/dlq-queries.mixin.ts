/**
 * Reading the dead-letter queue: the list (filtered and searched), the failure groups (letters grouped by their
 * fingerprint) and the counts per channel, group and status.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import {
  DEAD_LETTER_STATUSES,
  type DeadLetterCount,
  type DeadLetterGroup,
  type DeadLetterPage,
} from "../contracts/dead-letters";
import { selectPage } from "../lib/database";
import { MAX_PAGE_SIZE, filterParams, whereOf } from "../lib/dead-letter-filter";
import { toDeadLetter } from "../lib/dead-letter-rows";
import { pageOf, pageParams, type Page } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** Channels × groups × statuses: a few dozen rows, which the dashboards and alerts read whole. */
const MAX_STATS_PAGE = 1000;

type QueriesThis = Service<DbSettings> & DbServiceThis & DbMethods;

const listParams = paramsSchema({
  status: { type: "enum", values: [...DEAD_LETTER_STATUSES], optional: true },
  ...filterParams,
  ...pageParams(MAX_PAGE_SIZE, 20),
  $$strict: true,
});
const groupsParams = paramsSchema({
  status: { type: "enum", values: [...DEAD_LETTER_STATUSES], default: "PENDING" },
  ...filterParams,
  ...pageParams(MAX_STATS_PAGE),
  $$strict: true,
});
const statsParams = paramsSchema({ ...pageParams(MAX_STATS_PAGE), $$strict: true });

export function dlqQueriesMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, object, object, QueriesThis>> = {
    actions: {
      /** A page of dead letters, newest failure first, filtered and searched (message and error text). `dlq:read`. */
      list: {
        rest: "GET /",
        list: "page",
        permissions: ["dlq:read"],
        params: listParams,
        async handler(this: QueriesThis, ctx: Context<ParamsOf<typeof listParams>>): Promise<DeadLetterPage> {
          const { page, pageSize } = ctx.params;
          const where = whereOf(ctx.params);
          const query = { table: "dead_letters", where: where.sql, order: "failed_at DESC, id", bind: where.bind };
          return selectPage(this.rows, query, page, pageSize, toDeadLetter);
        },
      },

      /**
       * Dead letters grouped by failure fingerprint (channel, consumer group, error type, the error's summary),
       * largest group first: count, first and last seen, the latest one's error in full, the orders concerned. PENDING
       * ones unless `status` says otherwise; the list's filters apply. A group's letters: `GET /api/dlq?fingerprint=`;
       * replaying them: `POST /api/dlq/replays` with the fingerprint and the count seen (`expectedCount`). `dlq:read`.
       */
      groups: {
        rest: "GET /groups",
        list: "page",
        permissions: ["dlq:read"],
        params: groupsParams,
        async handler(this: QueriesThis, ctx: Context<ParamsOf<typeof groupsParams>>): Promise<Page<DeadLetterGroup>> {
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
        params: statsParams,
        async handler(this: QueriesThis, ctx: Context<ParamsOf<typeof statsParams>>): Promise<Page<DeadLetterCount>> {
          const counts = await this.rows<DeadLetterCount>(
            `SELECT channel, consumer_group AS "group", status, count(*)::int AS count FROM dead_letters
             GROUP BY channel, consumer_group, status ORDER BY channel, consumer_group, status`,
            [],
          );
          return pageOf(counts, ctx.params);
        },
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
