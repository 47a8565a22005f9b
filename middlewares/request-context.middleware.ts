/**
 * Runs every local action and event handler inside its request's context (lib/request-context.ts), so the logger
 * stamps the request id (Moleculer's `ctx.requestID`, which the gateway takes from `X-Request-Id`) on every line.
 */
import type { ActionHandler, Context, Middleware, Service } from "moleculer";
import { requestContext } from "../lib/request-context";

type Handler = (this: Service, ctx: Context) => unknown;

function withRequestContext(handler: Handler): Handler {
  return function inRequestContext(this: Service, ctx: Context) {
    if (!ctx.requestID) return handler.call(this, ctx);
    return requestContext.run({ requestId: ctx.requestID }, () => handler.call(this, ctx));
  };
}

export function RequestContextMiddleware(): Middleware {
  return {
    name: "RequestContext",
    localAction: (handler: ActionHandler) => withRequestContext(handler as Handler) as ActionHandler,
    localEvent: <H>(handler: H) => withRequestContext(handler as Handler) as H,
  };
}
