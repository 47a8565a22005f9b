/**
 * Who is calling and what they may do, as plain data. Every action declares its `permissions`; the permissions
 * middleware (middlewares/permissions.middleware.ts) decides with `authorize` on whichever node the call lands.
 */
import { ForbiddenError } from "./errors";
import { hasPermission } from "./grants";
import type { Caller } from "../contracts/caller";

export { grants, hasPermission } from "./grants";

/** What an action declares: open to anyone, to any authenticated caller, or to holders of any one of these. */
export type PermissionDeclaration = "public" | "authenticated" | readonly string[];

/** Who did it, for a record kept with what they did: `user:<id>`, `client:<id>`, or the caller's type. */
export function actorOf(caller: Caller | undefined): string {
  return caller && "id" in caller ? `${caller.type}:${caller.id}` : (caller?.type ?? "unknown");
}

/** The identity of internal work (service to service, events, jobs, the REPL). Set explicitly, never assumed. */
export const SYSTEM_CALLER: Caller = Object.freeze({ type: "system" });

/**
 * Options for `broker.call` that run the call as the system identity, linked to `parentCtx` for tracing. Not for
 * `ctx.call`: Moleculer merges a sub-call's meta back into the calling context, which would leave it running as the
 * system too.
 */
export function asSystem<C>(parentCtx?: C) {
  return { meta: { caller: SYSTEM_CALLER }, parentCtx };
}

export type Decision = { allowed: true } | { allowed: false; status: 401 | 403; reason: string };

/** Fail closed: no caller, no declaration, or no matching permission is a denial. */
export function authorize(caller: Caller | undefined, declared: PermissionDeclaration | undefined): Decision {
  if (declared === "public") return { allowed: true };
  if (!caller) return { allowed: false, status: 401, reason: "the call carries no identity" };
  if (caller.type === "system") return { allowed: true };
  if (declared === undefined) return { allowed: false, status: 403, reason: "the action declares no permissions" };
  if (caller.type === "anonymous") return { allowed: false, status: 401, reason: "authentication required" };
  if (declared === "authenticated") return { allowed: true };
  if (declared.some((required) => hasPermission(caller.permissions, required))) return { allowed: true };
  return { allowed: false, status: 403, reason: `requires one of: ${declared.join(", ")}` };
}

/** The permissions a set of roles grants, from the role → permissions table. */
export function permissionsOfRoles(roles: readonly string[], table: Record<string, readonly string[]>): string[] {
  return [...new Set(roles.flatMap((role) => table[role] ?? []))].sort();
}

/**
 * For an action that serves "own" and "any" permissions: the user id the caller is limited to, or undefined when the
 * caller may act on anyone's data (the system, or a holder of `anyPermission`). A caller that holds only an "own"
 * permission but is no user (a machine client) has no data of its own: 403.
 */
export function ownerScope(caller: Caller | undefined, anyPermission: string): string | undefined {
  if (!caller || caller.type === "system") return undefined;
  if ("permissions" in caller && hasPermission(caller.permissions, anyPermission)) return undefined;
  if (caller.type !== "user") {
    throw new ForbiddenError(`Only users have their own data; ${anyPermission} is needed`, { caller: caller.type });
  }
  return caller.id;
}
