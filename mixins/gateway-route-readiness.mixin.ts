/**
 * Whether the gateway's routes are built. moleculer-web builds the `/api` routes ~0.5 s after services change; until
 * then new routes 404. The node is not ready (`gateway:routes`) until its routes have been built after every local
 * service started, and `serviceRouted` tells a service that has no route yet from one that declares none.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { ReadinessCheck } from "../contracts/health";

export type GatewayRouteReadinessMethods = {
  readinessChecks(): Promise<ReadinessCheck[]>;
  /** Whether the gateway can route to `service`: running, and routed unless it declares no REST action at all. */
  serviceRouted(service: string): boolean;
};

interface RouteReadinessState {
  /** moleculer-web's route table. */
  aliases: { action?: string }[];
  /** moleculer-web's debounced route regeneration. */
  regenerateAllAutoAliases(): void;
  localServicesStarted: boolean;
  /** Whether the `/api` routes have been generated from the cluster's actions since this node started. */
  routesGenerated: boolean;
}

type RouteReadinessThis = Service & RouteReadinessState & GatewayRouteReadinessMethods;

const methods: GatewayRouteReadinessMethods = {
  async readinessChecks(this: RouteReadinessThis): Promise<ReadinessCheck[]> {
    const ok = this.routesGenerated;
    return [{ name: "gateway:routes", ok, latencyMs: 0, ...(ok ? {} : { error: "routes not generated yet" }) }];
  },

  serviceRouted(this: RouteReadinessThis, service: string): boolean {
    const entry = this.broker.registry
      .getServiceList({ onlyAvailable: true, skipInternal: true, withActions: true })
      .find((candidate) => candidate.name === service);
    if (!entry) return false;
    const { actions } = entry as unknown as { actions?: Record<string, { rest?: unknown }> };
    const declaresRoutes = Object.values(actions ?? {}).some((action) => action.rest);
    return !declaresRoutes || this.aliases.some((alias) => alias.action?.startsWith(`${service}.`));
  },
};

export function gatewayRouteReadinessMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<ServiceSettingSchema, GatewayRouteReadinessMethods, RouteReadinessState>> = {
    events: {
      /** Routes count as generated once they have been built after every local service started. */
      "$broker.started"() {
        this.localServicesStarted = true;
        this.regenerateAllAutoAliases();
      },
      "$api.aliases.regenerated"(ctx: Context) {
        if (ctx.nodeID === this.broker.nodeID && this.localServicesStarted) this.routesGenerated = true;
      },
    },

    created() {
      this.localServicesStarted = false;
      this.routesGenerated = false;
    },

    methods,
  };
  return schema as Partial<ServiceSchema>;
}
