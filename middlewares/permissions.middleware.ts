/**
 * RBAC on every node: each local action call is checked against the action's `permissions` declaration and the
 * caller in `ctx.meta.caller` (set by the gateway from the access token, or to the system identity explicitly by
 * internal callers). Fail closed: no caller, or no declaration for a non-system caller, is a denial. Actions of
 * Moleculer's internal services (`$node`) are left alone: they are never routed by the gateway.
 */
import type { ActionHandler, ActionSchema, Context, Middleware, Service } from "moleculer";
import { ForbiddenError, UnauthorizedError } from "../lib/errors";
import { authorize } from "../lib/permissions";
import type { CallerMeta } from "../contracts/caller";

export function PermissionsMiddleware(): Middleware {
  return {
    name: "Permissions",
    localAction(handler: ActionHandler, action: ActionSchema & { service?: { name: string } }) {
      if (action.service?.name.startsWith("$")) return handler;
      const declared = action.permissions;
      return function checkPermissions(this: Service, ctx: Context<unknown, CallerMeta>) {
        const decision = authorize(ctx.meta.caller, declared);
        if (!decision.allowed) {
          const data = { action: action.name, reason: decision.reason };
          throw decision.status === 401
            ? new UnauthorizedError(`Not allowed to call ${action.name}: ${decision.reason}`, "UNAUTHORIZED", data)
            : new ForbiddenError(`Not allowed to call ${action.name}: ${decision.reason}`, data);
        }
        return handler.call(this, ctx);
      } as ActionHandler;
    },
  };
}
