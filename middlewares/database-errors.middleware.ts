/**
 * Database errors become errors with a meaning (lib/errors.ts `fromDatabaseError`) on the node that ran the action:
 * a value the database cannot hold answers the client 422 instead of 500, and an unreachable database is a retryable
 * 503 that the retry policy and the circuit breaker see as the infrastructure fault it is. Registered first, so it sits
 * closest to the handler and every other middleware (audit, breaker, retries) sees the mapped error.
 */
import type { ActionHandler, Context, Middleware, Service } from "moleculer";
import { fromDatabaseError } from "../lib/errors";

export function DatabaseErrorsMiddleware(): Middleware {
  return {
    name: "DatabaseErrors",
    localAction(handler: ActionHandler): ActionHandler {
      return function mapDatabaseErrors(this: Service, ctx: Context) {
        return (handler.call(this, ctx) as Promise<unknown>).catch((err: unknown) => {
          throw fromDatabaseError(err);
        });
      } as ActionHandler;
    },
  };
}
