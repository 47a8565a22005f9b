/**
 * alerts: watches the platform and tells people when something is wrong, once per incident, and again when it clears.
 *
 * Every `ALERT_INTERVAL` it asks each rule what is wrong now (lib/alerts.ts): error-level log records in a window
 * (fed by `log.error` events from the log store), pending dead letters per channel (`dlq.stats`), circuit breakers
 * opened anywhere in the cluster (`$circuit-breaker.opened`/`closed`), sagas parked as FAILED (`sagas.list`), and
 * nodes the cluster health reports as lost (`health.cluster`). Breakers are known from events since this node started:
 * after a restart of the alerts node, their open incidents resolve until they open again. It reconciles that with the
 * open incidents in one transaction that holds an advisory lock, so replicas never evaluate twice; a rule whose
 * source cannot be read is skipped, never taken as "all clear".
 * Notifications (email over SMTP, Slack-compatible webhook) are written with the incident and sent after it, retried
 * with backoff until the channel takes them: an SMTP server that is down delays an alert, it does not lose it.
 *
 * Its parts: evaluating the rules and the breaker events (mixins/alerts-evaluation.mixin.ts), sending notifications
 * (mixins/alerts-notifications.mixin.ts), the rows (lib/alert-rows.ts) and the channels configured
 * (lib/alert-channels.ts); the consumer of `log.error`, the timer and the incidents' actions are here.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import { ALERT_RULES, type AlertRule } from "../lib/alerts";
import { channels } from "../lib/alert-channels";
import { toIncident, toNotice, type IncidentRow, type NoticeRow } from "../lib/alert-rows";
import { selectPage } from "../lib/database";
import type { EventEnvelope } from "../lib/events";
import type { ShippedLogRecord } from "../contracts/logs";
import { ConflictError, NotFoundError } from "../lib/errors";
import { actorOf } from "../lib/permissions";
import type { CallerMeta } from "../contracts/caller";
import alertMigrations from "../migrations/alerts";
import { alertsEvaluationMixin, type AlertsEvaluationMethods } from "../mixins/alerts-evaluation.mixin";
import { alertsNotificationsMixin, type AlertsNotificationsMethods } from "../mixins/alerts-notifications.mixin";
import { consumerMixin } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { pageParams } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import type { Incident, IncidentPage, Notice } from "../contracts/alerts";

const MAX_PAGE_SIZE = 100;

const listParams = paramsSchema({
  status: { type: "enum", values: ["FIRING", "RESOLVED"], optional: true },
  rule: { type: "enum", values: [...ALERT_RULES], optional: true },
  ...pageParams(MAX_PAGE_SIZE, 20),
  $$strict: true,
});
const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });

interface AlertsState {
  timer?: NodeJS.Timeout;
  evaluation?: Promise<void>;
}

type AlertsThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  AlertsEvaluationMethods &
  AlertsNotificationsMethods &
  AlertsState;

/** Keeps each error-level record's time for the error-rate window, in the consumer's transaction. */
async function recordErrorLog(this: AlertsThis, envelope: EventEnvelope, transaction: Transaction) {
  const { record } = envelope.payload as { record: ShippedLogRecord };
  await this.rows(
    "INSERT INTO error_logs (time, node_id, module, message) VALUES ($1, $2, $3, $4)",
    [record.time, record.nodeId, record.module, record.message.slice(0, 2000)],
    { transaction },
  );
}

const AlertsService: ServiceSchema<DbSettings, object, AlertsState, AlertsThis> = {
  name: "alerts",
  /**
   * No mixin declares actions: the routes stay in the order below (`GET /rules` before `GET /:id`). The mixins'
   * `created` runs first (breakers, mailer); `started` runs after theirs, once the database is connected, and
   * `stopped` before theirs, so the mailer closes after the evaluation under way has ended.
   */
  mixins: [
    dbMixin({
      service: "alerts",
      migrations: alertMigrations,
    }),
    consumerMixin<AlertsThis>({ group: "alerts", handlers: { "log.error": recordErrorLog } }),
    alertsEvaluationMixin(),
    alertsNotificationsMixin(),
  ],

  async started(this: AlertsThis) {
    if (channels(this.settings.config.alerts).length === 0) {
      this.logger.warn("No alert channel configured (ALERT_SMTP_URL, ALERT_WEBHOOK_URL): incidents are only recorded");
    }
    this.timer = setInterval(() => {
      // One evaluation at a time: a slow one is not overtaken by the next tick.
      this.evaluation ??= this.evaluate()
        .catch((err) => this.logger.warn(`Alert evaluation failed: ${(err as Error).message}`))
        .finally(() => (this.evaluation = undefined));
    }, this.settings.config.alerts.intervalMs);
  },

  async stopped(this: AlertsThis) {
    clearInterval(this.timer);
    await this.evaluation;
  },

  actions: {
    /** Incidents, newest first, by status and rule. `alerts:read`. */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["alerts:read"],
      params: listParams,
      async handler(this: AlertsThis, ctx: Context<ParamsOf<typeof listParams>>): Promise<IncidentPage> {
        const { status, rule, page, pageSize } = ctx.params;
        const where = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR rule = $2)";
        const bind = [status ?? null, rule ?? null];
        return selectPage(
          this.rows,
          { table: "incidents", where, order: "opened_at DESC", bind },
          page,
          pageSize,
          toIncident,
        );
      },
    },

    /** The rules with their thresholds, the channels configured, and how many incidents are open per rule. */
    rules: {
      rest: "GET /rules",
      permissions: ["alerts:read"],
      params: { $$strict: true },
      async handler(this: AlertsThis) {
        const cfg = this.settings.config.alerts;
        const open = await this.rows<{ rule: string; count: number }>(
          "SELECT rule, count(*)::int AS count FROM incidents WHERE status = 'FIRING' GROUP BY rule",
        );
        const openOf = (rule: string) => open.find((row) => row.rule === rule)?.count ?? 0;
        const thresholds: Record<AlertRule, string> = {
          "error-rate": `${cfg.errorLogs} error log record(s) in ${cfg.errorWindowMs / 1000} s`,
          "dlq-depth": `${cfg.dlqDepth} pending dead letter(s) on a channel`,
          "circuit-breaker": "a breaker opened",
          "saga-failures": "a saga parked as FAILED",
          "node-health": "a node lost",
        };
        return {
          intervalMs: cfg.intervalMs,
          cooldownMs: cfg.cooldownMs,
          channels: channels(cfg),
          rules: ALERT_RULES.map((rule) => ({ rule, firesOn: thresholds[rule], open: openOf(rule) })),
        };
      },
    },

    /** One incident, with the notices sent about it (each channel's, firing and resolved). `alerts:read`. */
    get: {
      rest: "GET /:id",
      permissions: ["alerts:read"],
      params: idParams,
      async handler(
        this: AlertsThis,
        ctx: Context<ParamsOf<typeof idParams>>,
      ): Promise<Incident & { notices: Notice[] }> {
        const [row] = await this.rows<IncidentRow>("SELECT * FROM incidents WHERE id = $1", [ctx.params.id]);
        if (!row) throw new NotFoundError("Incident", ctx.params.id);
        const notices = await this.rows<NoticeRow>(
          `SELECT kind, channel, status, attempts, last_error, created_at, sent_at
           FROM notifications WHERE incident_id = $1 ORDER BY created_at, channel`,
          [row.id],
        );
        return { ...toIncident(row), notices: notices.map(toNotice) };
      },
    },

    /**
     * Acknowledges an open incident: someone has it in hand (kept with who and when; audited). It stays open until
     * what fired clears. 409 for one resolved or acknowledged already. `alerts:acknowledge`.
     */
    acknowledge: {
      audit: { entity: "incident" },
      rest: "POST /:id/acknowledge",
      permissions: ["alerts:acknowledge"],
      params: idParams,
      async handler(this: AlertsThis, ctx: Context<ParamsOf<typeof idParams>, CallerMeta>): Promise<Incident> {
        const [row] = await this.rows<IncidentRow>(
          `UPDATE incidents SET acknowledged_at = now(), acknowledged_by = $2
           WHERE id = $1 AND status = 'FIRING' AND acknowledged_at IS NULL RETURNING *`,
          [ctx.params.id, actorOf(ctx.meta.caller)],
        );
        if (row) return toIncident(row);
        const [existing] = await this.rows<IncidentRow>("SELECT * FROM incidents WHERE id = $1", [ctx.params.id]);
        if (!existing) throw new NotFoundError("Incident", ctx.params.id);
        throw new ConflictError(
          existing.status === "RESOLVED" ? "This incident has resolved" : "This incident is acknowledged already",
          "CONFLICT",
          { id: existing.id, status: existing.status, acknowledgedBy: existing.acknowledged_by },
        );
      },
    },
  },
};

export default AlertsService;
