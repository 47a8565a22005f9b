/**
 * A status lifecycle as a table, the way orders have one: each status and the statuses it may move to; a status that
 * may move nowhere is final. Services move rows with a guarded UPDATE (`WHERE status = ANY(...)`), its guard read
 * off the table, so the table is the one place the rules are written.
 */
export type Lifecycle<S extends string> = Readonly<Record<S, readonly S[]>>;

export function canMove<S extends string>(lifecycle: Lifecycle<S>, from: S, to: S): boolean {
  return lifecycle[from].includes(to);
}

/** The statuses `to` may be reached from: the guard of the UPDATE that moves a row there. */
export function movesInto<S extends string>(lifecycle: Lifecycle<S>, to: S): S[] {
  return (Object.keys(lifecycle) as S[]).filter((from) => lifecycle[from].includes(to));
}

export function isFinalIn<S extends string>(lifecycle: Lifecycle<S>, status: S): boolean {
  return lifecycle[status].length === 0;
}
