/**
 * The gateway's part of the operations dashboard. Every gateway node counts the HTTP requests it answers (by status
 * class) and their duration, as Moleculer metrics (so Prometheus has them too). Every 15 s the node samples the
 * cluster: all gateways' counters (request rate, 5xx ratio, latency), the dead-letter queue's depth (`dlq.stats`) and
 * the sagas in flight and parked (`sagas.list`), keeping 15 minutes of samples; `GET /api/dashboard` answers the
 * cluster's health, the latest figures and that history. A figure whose service does not answer is null, never 0.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import {
  SAMPLE_EVERY_MS,
  STATUS_CLASSES,
  statusClass,
  trafficSample,
  withSample,
  type GatewayTraffic,
  type Sample,
  type StatusClass,
} from "../lib/dashboard";
import type { Page } from "../lib/paging";
import { asSystem } from "../lib/permissions";
import type { ClusterHealth } from "../contracts/health";

const REQUESTS_METRIC = "aicunet.http.requests";
const DURATION_METRIC = "aicunet.http.duration";
const CALL_TIMEOUT_MS = 3000;

export interface Dashboard {
  generatedAt: string;
  health: ClusterHealth;
  current: Sample | null;
  /** Up to 15 minutes of samples, every 15 s, oldest first. */
  history: Sample[];
  /** Where each figure comes from, for the UI to say. */
  sources: Record<string, string>;
}

export interface DashboardMethods {
  recordHttp(status: number, durationMs: number): void;
  takeSample(): Promise<void>;
}

interface DashboardState {
  samples: Sample[];
  lastTraffic: { at: number; byNode: Map<string, GatewayTraffic> } | null;
  samplerTimer?: NodeJS.Timeout;
}

type DashboardThis = Service & DashboardMethods & DashboardState;

const SOURCES: Record<string, string> = {
  health: "GET /api/health: every node's readiness checks (health.report on each node)",
  traffic: `every gateway's ${REQUESTS_METRIC} counter and ${DURATION_METRIC} histogram (last minute's quantiles)`,
  deadLetters: "dlq.stats: PENDING dead letters of every channel",
  sagas: "sagas.list: sagas RUNNING or COMPENSATING (and of those the stalled ones), and FAILED",
};

/** How many sagas `sagas.list` finds with `filter`, or null if the sagas service does not answer. */
async function sagaCount(svc: DashboardThis, filter: { status: string } | { stalled: true }): Promise<number | null> {
  try {
    const page = await svc.broker.call<Page<unknown>, object>("sagas.list", { ...filter, pageSize: 1 }, options());
    return page.total;
  } catch {
    return null;
  }
}

const options = () => ({ ...asSystem<Context>(), timeout: CALL_TIMEOUT_MS, retries: 0 });

export function dashboardMixin(): Partial<ServiceSchema> {
  const schema = {
    created(this: DashboardThis) {
      this.samples = [];
      this.lastTraffic = null;
      this.broker.metrics.register({
        name: REQUESTS_METRIC,
        type: "counter",
        labelNames: ["status"],
        description: "HTTP requests answered by this gateway, by status class",
      });
      this.broker.metrics.register({
        name: DURATION_METRIC,
        type: "histogram",
        unit: "millisecond",
        // Over the registry's window (60 s by default).
        quantiles: [0.5, 0.99],
        description: "Duration of the HTTP requests this gateway answered",
      });
    },

    async started(this: DashboardThis) {
      this.samplerTimer = setInterval(() => {
        this.takeSample().catch((err) => this.logger.warn(`Dashboard sample failed: ${(err as Error).message}`));
      }, SAMPLE_EVERY_MS);
      this.samplerTimer.unref();
    },

    async stopped(this: DashboardThis) {
      clearInterval(this.samplerTimer);
    },

    actions: {
      /** This gateway node's traffic counters, for whichever gateway samples the cluster. Internal. */
      traffic: {
        visibility: "public",
        handler(this: DashboardThis): GatewayTraffic {
          const requests = Object.fromEntries(STATUS_CLASSES.map((key) => [key, 0])) as Record<StatusClass, number>;
          const counts = (this.broker.metrics.getMetric(REQUESTS_METRIC)?.snapshot() ?? []) as unknown as {
            labels: { status: StatusClass };
            value: number;
          }[];
          for (const item of counts) requests[item.labels.status] += item.value;
          const [latency] = (this.broker.metrics.getMetric(DURATION_METRIC)?.snapshot() ?? []) as {
            quantiles?: Record<string, number | undefined>;
          }[];
          const quantile = (q: string) => latency?.quantiles?.[q] ?? null;
          return { nodeID: this.broker.nodeID, requests, p50Ms: quantile("0.5"), p99Ms: quantile("0.99") };
        },
      },

      /** The dashboard: cluster health, the latest sample and 15 minutes of history. `dashboard:read`. */
      dashboard: {
        permissions: ["dashboard:read"],
        async handler(this: DashboardThis, ctx: Context): Promise<Dashboard> {
          if (this.samples.length === 0) await this.takeSample();
          const health = await ctx.call<ClusterHealth, object>("health.cluster", {}, { timeout: CALL_TIMEOUT_MS });
          return {
            generatedAt: new Date().toISOString(),
            health,
            current: this.samples.at(-1) ?? null,
            history: this.samples,
            sources: SOURCES,
          };
        },
      },
    },

    methods: {
      recordHttp(this: DashboardThis, status: number, durationMs: number) {
        this.broker.metrics.increment(REQUESTS_METRIC, { status: statusClass(status) });
        this.broker.metrics.observe(DURATION_METRIC, durationMs);
      },

      async takeSample(this: DashboardThis) {
        const now = Date.now();
        const gateways = this.broker.registry
          .getServiceList({ onlyAvailable: true, withActions: false })
          .filter((svc) => svc.name === this.name && svc.nodeID)
          .map((svc) => svc.nodeID as string);
        const traffic = (
          await Promise.all(
            [...new Set(gateways)].map((nodeID) =>
              this.broker
                .call<GatewayTraffic, object>(`${this.name}.traffic`, {}, { ...options(), nodeID })
                .catch(() => null),
            ),
          )
        ).filter((item): item is GatewayTraffic => item !== null);
        const previous = this.lastTraffic;
        const rates = trafficSample(previous?.byNode ?? new Map(), traffic, previous ? now - previous.at : 0);
        this.lastTraffic = { at: now, byNode: new Map(traffic.map((item) => [item.nodeID, item])) };
        const stats = await this.broker
          .call<Page<{ status: string; count: number }>, object>("dlq.stats", {}, options())
          .catch(() => null);
        const [running, compensating, failed, stalled] = await Promise.all([
          ...["RUNNING", "COMPENSATING", "FAILED"].map((status) => sagaCount(this, { status })),
          sagaCount(this, { stalled: true }),
        ]);
        const sample: Sample = {
          time: new Date(now).toISOString(),
          ...rates,
          deadLetters: stats
            ? stats.rows.filter((row) => row.status === "PENDING").reduce((sum, row) => sum + row.count, 0)
            : null,
          sagasInFlight: running === null || compensating === null ? null : running + compensating,
          sagasFailed: failed,
          sagasStalled: stalled,
        };
        this.samples = withSample(this.samples, sample);
      },
    },
  };
  return schema as unknown as Partial<ServiceSchema>;
}
