/** Who calls an action: the identity the gateway (or the bus) puts in `ctx.meta.caller`, and permissions judge. */

export type Caller =
  | { type: "system" }
  | { type: "anonymous" }
  | { type: "user"; id: string; roles: string[]; permissions: string[] }
  | { type: "client"; id: string; permissions: string[] };

/** The part of `ctx.meta` that names the caller. */
export interface CallerMeta {
  caller?: Caller;
}
