/**
 * The two shapes every list of the API answers with (docs/api.md), in one place for the services, the OpenAPI
 * document, the UI, the tests and the bench. A client reads `rows` from either; the other fields say how to go on.
 */

/**
 * Offset paging (`page` from 1, `pageSize`), for lists whose rows change in place (orders, dead letters, users): one
 * page and the count of every match. A list short enough to answer whole (roles, rules, an order's payments) is one
 * page holding all of it, so clients read it the same way.
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

/** A list answered whole: all its rows as page 1 of 1 (0 pages when empty, as a paged query counts them). */
export function onePage<T>(rows: T[]): Page<T> {
  return { rows, total: rows.length, page: 1, pageSize: rows.length, totalPages: rows.length > 0 ? 1 : 0 };
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
