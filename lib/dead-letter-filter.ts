/**
 * Which dead letters a list, a failure group or a replay selection takes: the filters' params, and their WHERE clause
 * with every value bound.
 */
import type { DeadLetterFilter } from "../contracts/dead-letters";
import { escapeLike } from "./database";
import { assertType, type ParamsOf, type SameType } from "./params";

/** The largest page of dead letters, replay operations or replays a list answers. */
export const MAX_PAGE_SIZE = 100;

/** The WHERE clause and binds of a filter; every value is bound, never interpolated. */
export function whereOf(filter: DeadLetterFilter, firstBind = 1): { sql: string; bind: unknown[] } {
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

/** The filters of a list, a failure group and a replay selection: all of `DeadLetterFilter` but `status`. */
export const filterParams = {
  channel: { type: "string", max: 200, optional: true },
  group: { type: "string", max: 200, optional: true },
  errorType: { type: "string", max: 100, optional: true },
  from: { type: "date", convert: true, optional: true },
  to: { type: "date", convert: true, optional: true },
  search: { type: "string", min: 1, max: 200, optional: true },
  fingerprint: { type: "string", pattern: /^[0-9a-f]{32}$/, optional: true },
  orderId: { type: "uuid", optional: true },
} as const;
// `DeadLetterFilter` is the console's contract (it cannot import the validator's types), so it stays written out:
// a filter added to one and not the other fails the typecheck here, not a request.
assertType<SameType<ParamsOf<typeof filterParams>, Omit<DeadLetterFilter, "status">>>();

/** A replay selection as the filter it is: the letters pending now, and none that failed after `until`. */
export function selectionFilter({ until, ...filter }: ReplayParams): DeadLetterFilter {
  return { ...filter, to: filter.to && filter.to < until ? filter.to : until, status: "PENDING" };
}

export const selectionParams = {
  ...filterParams,
  /** When the operator's view was loaded (a group's `lastSeen`): letters that failed later are left alone. */
  until: { type: "date", convert: true },
  $$strict: true,
} as const;

/** What a replay operation acts on: pending, replayable letters matching the filter, failed no later than `until`. */
export type ReplayParams = ParamsOf<typeof selectionParams>;
