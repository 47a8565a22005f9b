/**
 * The event store: every domain event the audit group consumed (mixins/audit-consumers.mixin.ts stores them), in
 * order globally (position) and per stream (the entity it is about), for readers that replay them.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { StoredEvent } from "../contracts/audit";
import { toStoredEvent, type EventRow } from "../lib/audit-rows";
import { CURSOR_PARAM, cursorPage, type CursorPage } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** Event store pages: a replaying reader takes many events per request. */
const DEFAULT_EVENTS_PAGE = 100;
export const MAX_EVENTS_PAGE = 1000;

type EventStoreThis = Service<DbSettings> & DbServiceThis & DbMethods;

const eventsParams = paramsSchema({
  after: CURSOR_PARAM,
  pageSize: { type: "number", integer: true, positive: true, max: MAX_EVENTS_PAGE, convert: true, optional: true },
  limit: { type: "number", integer: true, positive: true, max: MAX_EVENTS_PAGE, convert: true, optional: true },
  $$strict: true,
});
const streamParams = paramsSchema({
  streamType: { type: "string", min: 1, max: 100 },
  streamId: { type: "string", min: 1, max: 200 },
  after: CURSOR_PARAM,
  pageSize: {
    type: "number",
    integer: true,
    positive: true,
    max: MAX_EVENTS_PAGE,
    convert: true,
    default: DEFAULT_EVENTS_PAGE,
  },
  $$strict: true,
});

export function auditEventStoreMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, object, object, EventStoreThis>> = {
    actions: {
      /**
       * The event store, globally, in order: a cursor page of the events stored after `after` (a cursor: the position
       * of the last event read). `limit` is the deprecated name of `pageSize`, documented before lists had one
       * vocabulary; `pageSize` wins when both are given. `audit:read`.
       */
      events: {
        rest: "GET /events",
        list: "cursor",
        permissions: ["audit:read"],
        params: eventsParams,
        async handler(
          this: EventStoreThis,
          ctx: Context<ParamsOf<typeof eventsParams>>,
        ): Promise<CursorPage<StoredEvent>> {
          const { after } = ctx.params;
          const pageSize = ctx.params.pageSize ?? ctx.params.limit ?? DEFAULT_EVENTS_PAGE;
          const rows = await this.rows<EventRow>(
            "SELECT * FROM events WHERE position > $1 ORDER BY position LIMIT $2",
            [after, pageSize + 1],
          );
          return cursorPage(rows.map(toStoredEvent), pageSize, after, (event) => event.position);
        },
      },

      /**
       * One stream of the event store (an entity's events), in order: a cursor page of the events after `after` (a
       * cursor: the stream version of the last event read). `audit:read`.
       */
      stream: {
        rest: "GET /streams/:streamType/:streamId",
        list: "cursor",
        permissions: ["audit:read"],
        params: streamParams,
        async handler(
          this: EventStoreThis,
          ctx: Context<ParamsOf<typeof streamParams>>,
        ): Promise<CursorPage<StoredEvent>> {
          const { streamType, streamId, after, pageSize } = ctx.params;
          const rows = await this.rows<EventRow>(
            `SELECT * FROM events WHERE stream_type = $1 AND stream_id = $2 AND stream_version > $3
             ORDER BY stream_version LIMIT $4`,
            [streamType, streamId, after, pageSize + 1],
          );
          return cursorPage(rows.map(toStoredEvent), pageSize, after, (event) => event.streamVersion);
        },
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
