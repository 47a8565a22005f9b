/**
 * Every node runs this service (it is not one of `SERVICES`): liveness, readiness of this node's dependencies, and
 * the cluster view the gateway serves at `GET /api/health`. Calls to `health.*` prefer the local node, so the
 * gateway's `/health/*` routes report on the gateway's own node.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { NotReadyError } from "../lib/errors";
import { failingChecks } from "../lib/health";
import type { ClusterHealth, ClusterNodeHealth, NodeReadiness, NodeState, ReadinessCheck } from "../contracts/health";

interface ReadinessSource {
  name: string;
  readinessChecks?: () => Promise<ReadinessCheck[]>;
}

interface ClusterNode {
  id: string;
  available: boolean;
  hostname?: string;
  metadata?: { role?: string };
}

interface HealthState {
  /** How each node that disconnected did so, from `$node.disconnected`; the registry itself does not keep it. */
  departures: Map<string, Exclude<NodeState, "up">>;
}

const NODE_REPORT_TIMEOUT = 3000;

/**
 * A probe's answer is the point, not a fault: a node that is not ready yet says so with 503, and a probe polled every
 * second while the node starts must neither open a circuit breaker (which would make the probe itself unavailable for
 * `halfOpenTime`, and ready late) nor be retried (the prober asks again on its own schedule).
 */
const PROBE = { circuitBreaker: { enabled: false }, retryPolicy: { enabled: false } } as const;

const HealthService: ServiceSchema<ServiceSettingSchema, HealthMethods, HealthState> = {
  name: "health",

  created() {
    this.departures = new Map();
  },

  events: {
    "$node.disconnected"(ctx: Context<{ node: { id: string }; unexpected: boolean }>) {
      this.departures.set(ctx.params.node.id, ctx.params.unexpected ? "lost" : "left");
    },
    "$node.connected"(ctx: Context<{ node: { id: string } }>) {
      this.departures.delete(ctx.params.node.id);
    },
  },

  actions: {
    /** The process is up and its event loop answers. Public, no dependencies checked. */
    live: {
      ...PROBE,
      permissions: "public",
      handler(this: Service) {
        return { status: "ok", nodeID: this.broker.nodeID, uptimeSeconds: Math.round(process.uptime()) };
      },
    },

    /** 200 with this node's checks when it can serve; 503 `NOT_READY` naming the failing checks otherwise. Public. */
    ready: {
      ...PROBE,
      permissions: "public",
      async handler() {
        const report = await this.nodeReadiness();
        if (!report.ready) {
          throw new NotReadyError(failingChecks(report.checks), { nodeID: report.nodeID, checks: report.checks });
        }
        return report;
      },
    },

    /** This node's readiness as data, for the cluster view. Internal. */
    report: {
      ...PROBE,
      visibility: "public",
      permissions: "public",
      handler() {
        return this.nodeReadiness();
      },
    },

    /** Every node the registry knows (but REPL nodes) with its state and readiness. Public. */
    cluster: {
      rest: "GET /",
      permissions: "public",
      async handler(ctx: Context): Promise<ClusterHealth> {
        const nodes = (
          this.broker.registry.getNodeList({ onlyAvailable: false, withServices: false }) as unknown as ClusterNode[]
        ).filter((node) => node.metadata?.role !== "repl");
        const reports = await Promise.all(nodes.map((node) => this.clusterNodeHealth(ctx, node)));
        reports.sort((a, b) => a.nodeID.localeCompare(b.nodeID));
        const healthy = reports.every((node) => (node.state === "up" ? node.ready : node.state === "left"));
        return { status: healthy ? "ok" : "degraded", nodes: reports };
      },
    },
  },

  methods: {
    async clusterNodeHealth(ctx: Context, node: ClusterNode): Promise<ClusterNodeHealth> {
      const base = { nodeID: node.id, available: node.available, hostname: node.hostname };
      const absent = { ready: false, services: [], checks: [], uptimeSeconds: 0 };
      if (!node.available) return { ...base, ...absent, state: this.departures.get(node.id) ?? "lost" };
      try {
        const opts = { nodeID: node.id, timeout: NODE_REPORT_TIMEOUT, retries: 0 };
        const report = await ctx.call<NodeReadiness, Record<string, never>>("health.report", {}, opts);
        return { ...base, ...report, state: "up" };
      } catch (err) {
        const check = {
          name: "health.report",
          ok: false,
          latencyMs: NODE_REPORT_TIMEOUT,
          error: (err as Error).message,
        };
        return { ...base, ...absent, checks: [check], state: "up" };
      }
    },

    async nodeReadiness(this: Service): Promise<NodeReadiness> {
      const broker = this.broker;
      const local = broker.services as unknown as ReadinessSource[];
      const checks: ReadinessCheck[] = [
        { name: "broker", ok: broker.started, latencyMs: 0, ...(broker.started ? {} : { error: "not started" }) },
      ];
      if (broker.transit) {
        const connected = broker.transit.connected;
        checks.push({
          name: "transporter",
          ok: connected,
          latencyMs: 0,
          ...(connected ? {} : { error: "disconnected" }),
        });
      }
      const serviceChecks = await Promise.all(local.map((svc) => svc.readinessChecks?.() ?? Promise.resolve([])));
      checks.push(...serviceChecks.flat());
      return {
        nodeID: broker.nodeID,
        ready: checks.every((check) => check.ok),
        services: local.map((svc) => svc.name).filter((name) => !name.startsWith("$")),
        checks,
        uptimeSeconds: Math.round(process.uptime()),
      };
    },
  },
};

interface HealthMethods {
  nodeReadiness(): Promise<NodeReadiness>;
  clusterNodeHealth(ctx: Context, node: ClusterNode): Promise<ClusterNodeHealth>;
}

export default HealthService;
