/**
 * The two shapes every list of the API answers with (docs/api.md), in one place for the services, the OpenAPI
 * document, the UI and the tests. A client reads `rows` from either; the other fields say how to go on.
 */
import type { ParamsOf } from "./params";

/**
 * Offset paging (`page` from 1, `pageSize`), for lists whose rows change in place (orders, dead letters, users): one
 * page and the count of every match. Every such list takes `page` and `pageSize`, short ones (roles, rules, an order's
 * payments) too, so clients page them all the same way.
 */
export interface Page<T> {
  rows: T[];
  total: number;
  page: number;
  pageSize: number;
  totalPages: number;
}

/**
 * Cursor paging (`after`, `pageSize`), for append-only streams read in order (the event store, the log tail), where
 * offsets would shift under a reader and a count would be stale at once. `nextCursor` is opaque: pass it as `after`
 * to read on. It is never null, because a stream has no end: with nothing new it is the cursor that was given, to
 * poll with later. `hasMore` says more rows were already there, to read at once.
 */
export interface CursorPage<T> {
  rows: T[];
  pageSize: number;
  nextCursor: string;
  hasMore: boolean;
}

/** Which of the two shapes a list action answers with: its `list` key, which the OpenAPI document shows. */
export type ListShape = "page" | "cursor";

/** The paging parameters of an offset list; short lists default to their whole length (`pageSize` = the maximum). */
export function pageParams(maxPageSize: number, defaultPageSize = maxPageSize) {
  return {
    page: { type: "number", integer: true, positive: true, convert: true, default: 1 },
    pageSize: {
      type: "number",
      integer: true,
      positive: true,
      max: maxPageSize,
      convert: true,
      default: defaultPageSize,
    },
  } as const;
}

/** What an offset list is asked for (after validation, with the defaults applied). */
export type PageQuery = ParamsOf<ReturnType<typeof pageParams>>;

/** One page of a short list read whole (roles, rules, an order's payments): cheaper than counting in SQL. */
export function pageOf<T>(all: T[], { page, pageSize }: PageQuery): Page<T> {
  const rows = all.slice((page - 1) * pageSize, page * pageSize);
  return { rows, total: all.length, page, pageSize, totalPages: Math.ceil(all.length / pageSize) };
}

/**
 * The page of a stream read with `pageSize + 1` rows (the extra one only says there is more): `positionOf` gives a
 * row's place in the stream, and the cursor after the last row kept is the next one.
 */
export function cursorPage<T>(
  fetched: T[],
  pageSize: number,
  after: string,
  positionOf: (row: T) => number | string,
): CursorPage<T> {
  const rows = fetched.slice(0, pageSize);
  const last = rows.at(-1);
  return {
    rows,
    pageSize,
    nextCursor: last === undefined ? after : String(positionOf(last)),
    hasMore: fetched.length > pageSize,
  };
}

/** The `after` parameter of a cursor list: a cursor from `nextCursor`; absent reads from the start. */
export const CURSOR_PARAM = { type: "string", pattern: /^\d{1,15}$/, convert: true, default: "0" } as const;
