/**
 * The gateway's access log: one line per request when its answer has been sent (method, path, status, duration,
 * caller, client address and request ids), in place of moleculer-web's own request lines; and the request's status
 * and duration for the dashboard's HTTP figures.
 */
import type { ServerResponse } from "node:http";
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { GatewayRequest } from "../lib/gateway-request";
import type { DashboardMethods } from "./dashboard.mixin";
import type { GatewayRateLimitMethods } from "./gateway-rate-limits.mixin";

export interface GatewayAccessLogMethods {
  /** Logs the request once its answer is sent; called as it arrives, before moleculer-web strips the route's prefix. */
  logAccessWhenAnswered(req: GatewayRequest, res: ServerResponse): void;
}

type AccessLogThis = Service &
  GatewayAccessLogMethods &
  Pick<DashboardMethods, "recordHttp"> &
  Pick<GatewayRateLimitMethods, "clientOf">;

export function gatewayAccessLogMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<ServiceSettingSchema, GatewayAccessLogMethods, object, AccessLogThis>> = {
    methods: {
      logAccessWhenAnswered(req: GatewayRequest, res: ServerResponse) {
        const startedAt = performance.now();
        const path = req.url?.split("?")[0];
        res.once("finish", () => {
          const caller = req.$ctx?.meta.caller;
          const durationMs = Math.round((performance.now() - startedAt) * 10) / 10;
          // An event stream's duration is how long someone watched, not how fast we answered.
          const streamed = String(res.getHeader("content-type") ?? "").startsWith("text/event-stream");
          if (!streamed) this.recordHttp(res.statusCode, durationMs);
          this.logger.info(
            {
              method: req.method,
              path,
              status: res.statusCode,
              durationMs,
              callerId: caller && "id" in caller ? caller.id : null,
              client: this.clientOf(req),
              requestId: req.$requestId,
              ...(req.$clientRequestId ? { clientRequestId: req.$clientRequestId } : {}),
            },
            "access",
          );
        });
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
