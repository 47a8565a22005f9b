/**
 * How the gateway stops: as the node starts stopping (middlewares/stop-intake.middleware.ts) it takes no new
 * connection or request and ends its event streams; the requests it accepted finish; once it has stopped, the
 * connections they leave idle are closed.
 */
import type { Server } from "node:http";
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { GatewayStreamMethods } from "./gateway-streams.mixin";

export interface GatewayShutdownMethods {
  /** Called as the node starts stopping: no new connections or requests; accepted ones finish. */
  stopIntake(): void;
}

interface ShutdownState {
  /** moleculer-web's HTTP server. */
  server?: Server;
}

type ShutdownThis = Service & ShutdownState & GatewayShutdownMethods & Pick<GatewayStreamMethods, "endStreams">;

export function gatewayShutdownMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<ServiceSettingSchema, GatewayShutdownMethods, ShutdownState, ShutdownThis>> = {
    async stopped() {
      // The requests in flight at stopIntake have finished (or outlasted SHUTDOWN_TIMEOUT): their connections, now
      // idle, would otherwise stay open for the keep-alive timeout, holding clients (and this process) on a stopped
      // gateway.
      this.server?.closeAllConnections();
    },

    methods: {
      stopIntake() {
        this.endStreams();
        if (!this.server?.listening) return;
        this.server.close();
        this.server.closeIdleConnections();
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
