/**
 * The dlq's depth: pending dead letters per original channel, exported as the `aicunet.dlq.depth` gauge. Whatever
 * stores, replays, resolves or discards letters calls `refreshDepth` once its change is committed.
 */
import type { Service, ServiceSchema } from "moleculer";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

const DEPTH_METRIC = "aicunet.dlq.depth";

export interface DlqDepthMethods {
  refreshDepth(): Promise<void>;
}

interface DepthState {
  depthChannels: Set<string>;
}

type DepthThis = Service<DbSettings> & DbServiceThis & DbMethods & DlqDepthMethods & DepthState;

export function dlqDepthMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DlqDepthMethods, DepthState, DepthThis>> = {
    created(this: DepthThis) {
      this.depthChannels = new Set();
      this.broker.metrics.register({
        type: "gauge",
        name: DEPTH_METRIC,
        labelNames: ["channel"],
        description: "Dead letters waiting for an operator (status PENDING), per original channel",
      });
    },

    methods: {
      async refreshDepth(this: DepthThis) {
        const counts = await this.rows<{ channel: string; count: number }>(
          "SELECT channel, count(*)::int AS count FROM dead_letters WHERE status = 'PENDING' GROUP BY channel",
        );
        const seen = new Set(this.depthChannels);
        for (const { channel, count } of counts) {
          this.broker.metrics.set(DEPTH_METRIC, count, { channel });
          this.depthChannels.add(channel);
          seen.delete(channel);
        }
        for (const channel of seen) this.broker.metrics.set(DEPTH_METRIC, 0, { channel });
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
