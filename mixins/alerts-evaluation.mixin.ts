/**
 * Evaluating the alert rules: what each rule sees now (lib/alerts.ts), reconciled with the open incidents in one
 * transaction that holds an advisory lock, so replicas never evaluate twice; a rule whose source cannot be read is
 * skipped, never taken as "all clear". Notifications are written with the incident and sent after it
 * (mixins/alerts-notifications.mixin.ts). Open circuit breakers are known from the cluster's breaker events.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import type { ClusterHealth } from "../contracts/health";
import { INCIDENT_LIFECYCLE } from "../contracts/alerts";
import { movesInto } from "../contracts/lifecycle";
import type { Saga } from "../contracts/sagas";
import { channels } from "../lib/alert-channels";
import {
  deepDeadLetterQueues,
  lostNodes,
  parkedSagas,
  reconcile,
  type AlertRule,
  type Firing,
  type OpenIncident,
} from "../lib/alerts";
import type { Page } from "../lib/paging";
import { asSystem } from "../lib/permissions";
import type { AlertsNotificationsMethods } from "./alerts-notifications.mixin";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

interface BreakerEvent {
  nodeID: string;
  action: string;
}

/** Rule -> what fires now, or null when its source could not be read this time. */
type Observation = Map<AlertRule, Firing[] | null>;

/** An arbitrary constant; advisory locks are scoped to the alerts database. */
const EVALUATION_LOCK = 7_426_202;

export interface AlertsEvaluationMethods {
  observe(): Promise<Observation>;
  evaluate(): Promise<void>;
  reconcileRule(rule: AlertRule, firing: Firing[], transaction: Transaction): Promise<void>;
}

interface EvaluationState {
  openBreakers: Map<string, string>;
}

type EvaluationThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  AlertsNotificationsMethods &
  AlertsEvaluationMethods &
  EvaluationState;

export function alertsEvaluationMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, AlertsEvaluationMethods, EvaluationState, EvaluationThis>> = {
    created(this: EvaluationThis) {
      this.openBreakers = new Map();
    },

    events: {
      // Breakers live in each calling node's memory; Moleculer broadcasts their changes to the cluster.
      "$circuit-breaker.opened": {
        handler(this: EvaluationThis, ctx: Context<BreakerEvent>) {
          const key = `${ctx.nodeID ?? "?"}->${ctx.params.action}@${ctx.params.nodeID}`;
          const summary = `Circuit breaker open for ${ctx.params.action} on node ${ctx.params.nodeID} (seen from ${ctx.nodeID})`;
          this.openBreakers.set(key, summary);
        },
      },
      "$circuit-breaker.closed": {
        handler(this: EvaluationThis, ctx: Context<BreakerEvent>) {
          this.openBreakers.delete(`${ctx.nodeID ?? "?"}->${ctx.params.action}@${ctx.params.nodeID}`);
        },
      },
    },

    methods: {
      /** What every rule sees now. Calls other services as the system; one that does not answer leaves its rule out. */
      async observe(this: EvaluationThis): Promise<Observation> {
        const cfg = this.settings.config.alerts;
        const observation: Observation = new Map();
        const ask = async <T>(rule: AlertRule, read: () => Promise<T>, toFiring: (value: T) => Firing[]) => {
          try {
            observation.set(rule, toFiring(await read()));
          } catch (err) {
            observation.set(rule, null);
            this.logger.debug(`Alert rule ${rule} skipped: ${(err as Error).message}`);
          }
        };
        const options = { ...asSystem<Context>(), timeout: Math.min(5000, cfg.intervalMs), retries: 0 };
        await Promise.all([
          ask(
            "error-rate",
            async () => {
              await this.rows("DELETE FROM error_logs WHERE time < now() - make_interval(secs => $1) RETURNING id", [
                (cfg.errorWindowMs * 2) / 1000,
              ]);
              const [{ count }] = await this.rows<{ count: number }>(
                "SELECT count(*)::int AS count FROM error_logs WHERE time >= now() - make_interval(secs => $1)",
                [cfg.errorWindowMs / 1000],
              );
              return count;
            },
            (count) =>
              count >= cfg.errorLogs
                ? [{ key: "all", summary: `${count} error log record(s) in the last ${cfg.errorWindowMs / 1000} s` }]
                : [],
          ),
          ask(
            "dlq-depth",
            () =>
              this.broker.call<Page<{ channel: string; group: string; status: string; count: number }>, object>(
                "dlq.stats",
                {},
                options,
              ),
            (stats) => deepDeadLetterQueues(stats.rows, cfg.dlqDepth),
          ),
          // The health service (on every node) already tells a node that crashed from one that stopped.
          ask(
            "node-health",
            () =>
              this.broker.call<ClusterHealth, object>("health.cluster", {}, { ...options, nodeID: this.broker.nodeID }),
            (cluster) => lostNodes(cluster.nodes),
          ),
          ask(
            "saga-failures",
            () => this.broker.call<Page<Saga>, object>("sagas.list", { status: "FAILED", pageSize: 100 }, options),
            (page) => parkedSagas(page.rows),
          ),
        ]);
        observation.set(
          "circuit-breaker",
          [...this.openBreakers].map(([key, summary]) => ({ key, summary })),
        );
        return observation;
      },

      async evaluate(this: EvaluationThis): Promise<void> {
        const observation = await this.observe();
        await this.sequelize.transaction(async (transaction) => {
          const [{ locked }] = await this.rows<{ locked: boolean }>(
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [EVALUATION_LOCK],
            { transaction },
          );
          if (!locked) return; // another replica is evaluating
          for (const [rule, firing] of observation) {
            if (firing) await this.reconcileRule(rule, firing, transaction);
          }
        });
        await this.sendDue();
      },

      async reconcileRule(this: EvaluationThis, rule: AlertRule, firing: Firing[], transaction: Transaction) {
        const open = await this.rows<OpenIncident>(
          "SELECT id, key, notified FROM incidents WHERE rule = $1 AND status = 'FIRING'",
          [rule],
          { transaction },
        );
        const notifiedRows = await this.rows<{ key: string; last: Date }>(
          "SELECT key, max(opened_at) AS last FROM incidents WHERE rule = $1 AND notified GROUP BY key",
          [rule],
          { transaction },
        );
        const lastNotified = new Map(notifiedRows.map((row) => [row.key, row.last]));
        const decision = reconcile(firing, open, lastNotified, new Date(), this.settings.config.alerts.cooldownMs);
        const notify = async (incidentId: string, kind: "firing" | "resolved") => {
          for (const channel of channels(this.settings.config.alerts)) {
            await this.rows(
              "INSERT INTO notifications (id, incident_id, kind, channel) VALUES ($1, $2, $3, $4) RETURNING id",
              [randomUUID(), incidentId, kind, channel],
              { transaction },
            );
          }
        };
        for (const entry of decision.open) {
          const id = randomUUID();
          await this.rows(
            `INSERT INTO incidents (id, rule, key, status, summary, notified) VALUES ($1, $2, $3, 'FIRING', $4, $5)
             RETURNING id`,
            [id, rule, entry.key, entry.summary, entry.notify],
            { transaction },
          );
          if (entry.notify) await notify(id, "firing");
          this.logger.warn(`Alert ${rule} firing: ${entry.summary}${entry.notify ? "" : " (in cool-down, not sent)"}`);
        }
        for (const entry of decision.resolve) {
          await this.rows(
            "UPDATE incidents SET status = 'RESOLVED', resolved_at = now() WHERE id = $1 AND status = ANY($2) RETURNING id",
            [entry.id, movesInto(INCIDENT_LIFECYCLE, "RESOLVED")],
            { transaction },
          );
          if (entry.notify) await notify(entry.id, "resolved");
          this.logger.info(`Alert ${rule} resolved: ${entry.key}`);
        }
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
