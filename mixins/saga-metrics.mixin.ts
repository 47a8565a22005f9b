/**
 * The sagas service's metrics: sagas started, completed, compensated, failed and swept, per definition, counted where
 * that happens (the consumers, the executor's checkpoints, the sweeper); the duration of each step's action; and the
 * sagas in flight, counted from the database every 5 s.
 */
import type { Service, ServiceSchema } from "moleculer";
import type { SagaEngineState } from "../lib/saga-engine";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

export type SagaMetricsMethods = {
  refreshInflight(): Promise<void>;
};

interface SagaMetricsState {
  inflightTimer?: NodeJS.Timeout;
}

type MetricsThis = Service<DbSettings> & DbServiceThis & DbMethods & SagaEngineState & SagaMetricsState;

const methods: SagaMetricsMethods = {
  async refreshInflight(this: MetricsThis) {
    const counts = await this.rows<{ definition: string; status: string; count: number }>(
      `SELECT definition, status, count(*)::int AS count FROM sagas
       WHERE status IN ('RUNNING', 'COMPENSATING', 'FAILED') GROUP BY definition, status`,
      [],
    );
    for (const definition of Object.keys(this.definitions)) {
      for (const status of ["RUNNING", "COMPENSATING", "FAILED"]) {
        const found = counts.find((count) => count.definition === definition && count.status === status);
        this.broker.metrics.set("aicunet.sagas.inflight", found?.count ?? 0, { definition, status });
      }
    }
  },
};

export function sagaMetricsMixin(): Partial<ServiceSchema> {
  const schema: Partial<
    ServiceSchema<DbSettings, DbMethods & SagaMetricsMethods, DbServiceThis & SagaEngineState & SagaMetricsState>
  > = {
    created() {
      const metrics = this.broker.metrics;
      for (const outcome of ["started", "completed", "compensated", "failed"]) {
        metrics.register({
          type: "counter",
          name: `aicunet.sagas.${outcome}`,
          labelNames: ["definition"],
          description: `Sagas ${outcome}`,
        });
      }
      metrics.register({
        type: "histogram",
        name: "aicunet.sagas.step.duration",
        labelNames: ["definition", "step", "outcome"],
        unit: "millisecond",
        quantiles: true,
        description: "Duration of saga step actions",
      });
      metrics.register({
        type: "counter",
        name: "aicunet.sagas.swept",
        labelNames: ["definition"],
        description: "Sagas taken over from an engine whose lease ran out (a node that died or stalled)",
      });
      metrics.register({
        type: "gauge",
        name: "aicunet.sagas.inflight",
        labelNames: ["definition", "status"],
        description: "Sagas not finished yet (RUNNING, COMPENSATING) and parked (FAILED)",
      });
    },

    async started() {
      await this.refreshInflight();
      this.inflightTimer = setInterval(() => this.refreshInflight().catch(() => undefined), 5000);
    },

    stopped() {
      clearInterval(this.inflightTimer);
    },

    methods,
  };
  return schema as Partial<ServiceSchema>;
}
