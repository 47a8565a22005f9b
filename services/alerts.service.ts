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
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import nodemailer from "nodemailer";
import type { Transaction } from "sequelize";
import {
  ALERT_RULES,
  deepDeadLetterQueues,
  lostNodes,
  notificationText,
  parkedSagas,
  reconcile,
  type AlertRule,
  type Firing,
  type OpenIncident,
} from "../lib/alerts";
import { config } from "../lib/config";
import { selectPage } from "../lib/database";
import type { Page } from "../lib/paging";
import type { EventEnvelope } from "../lib/events";
import type { ShippedLogRecord } from "../contracts/logs";
import { ConflictError, NotFoundError } from "../lib/errors";
import { actorOf, asSystem } from "../lib/permissions";
import type { CallerMeta } from "../contracts/caller";
import alertMigrations from "../migrations/alerts";
import { consumerMixin } from "../mixins/consumer.mixin";
import type { ClusterHealth } from "../contracts/health";
import type { Saga } from "../contracts/sagas";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { backoff } from "../lib/backoff";
import {
  INCIDENT_LIFECYCLE,
  type Incident,
  type IncidentPage,
  type IncidentStatus,
  type Notice,
  type NotificationChannel,
} from "../contracts/alerts";
import { movesInto } from "../contracts/lifecycle";

interface IncidentRow {
  id: string;
  rule: AlertRule;
  key: string;
  status: IncidentStatus;
  summary: string;
  notified: boolean;
  opened_at: Date;
  resolved_at: Date | null;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
}

interface NoticeRow {
  kind: Notice["kind"];
  channel: NotificationChannel;
  status: Notice["status"];
  attempts: number;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
}

interface DueNotification {
  id: string;
  kind: "firing" | "resolved";
  channel: NotificationChannel;
  attempts: number;
  rule: AlertRule;
  key: string;
  summary: string;
  opened_at: Date;
  resolved_at: Date | null;
}

interface BreakerEvent {
  nodeID: string;
  action: string;
}

/** Rule -> what fires now, or null when its source could not be read this time. */
type Observation = Map<AlertRule, Firing[] | null>;

/** An arbitrary constant; advisory locks are scoped to the alerts database. */
const EVALUATION_LOCK = 7_426_202;
const MAX_SEND_ATTEMPTS = 10;
const MAX_RETRY_DELAY_MS = 300_000;
const SEND_BATCH = 50;
/** A claimed notification is not picked up by another evaluator for this long (its sender crashed mid-send). */
const CLAIM_MS = 60_000;
const MAX_PAGE_SIZE = 100;

function toIncident(row: IncidentRow): Incident {
  return {
    id: row.id,
    rule: row.rule,
    key: row.key,
    status: row.status,
    summary: row.summary,
    notified: row.notified,
    openedAt: row.opened_at.toISOString(),
    resolvedAt: row.resolved_at?.toISOString() ?? null,
    acknowledgedAt: row.acknowledged_at?.toISOString() ?? null,
    acknowledgedBy: row.acknowledged_by,
  };
}

function toNotice(row: NoticeRow): Notice {
  return {
    kind: row.kind,
    channel: row.channel,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at.toISOString(),
    sentAt: row.sent_at?.toISOString() ?? null,
  };
}

/** The channels configured now; notifications are written for these. */
function channels(): NotificationChannel[] {
  const { smtpUrl, webhookUrl } = config().alerts;
  return [...(smtpUrl ? (["email"] as const) : []), ...(webhookUrl ? (["webhook"] as const) : [])];
}

interface AlertsMethods {
  observe(): Promise<Observation>;
  evaluate(): Promise<void>;
  reconcileRule(rule: AlertRule, firing: Firing[], transaction: Transaction): Promise<void>;
  sendDue(): Promise<void>;
  deliver(notification: DueNotification): Promise<void>;
}

interface AlertsState {
  openBreakers: Map<string, string>;
  timer?: NodeJS.Timeout;
  evaluation?: Promise<void>;
  mailer?: nodemailer.Transporter;
}

type AlertsThis = Service<DbSettings> & DbServiceThis & DbMethods & AlertsMethods & AlertsState;

/** Keeps each error-level record's time for the error-rate window, in the consumer's transaction. */
async function recordErrorLog(this: AlertsThis, envelope: EventEnvelope, transaction: Transaction) {
  const { record } = envelope.payload as { record: ShippedLogRecord };
  await this.rows(
    "INSERT INTO error_logs (time, node_id, module, message) VALUES ($1, $2, $3, $4)",
    [record.time, record.nodeId, record.module, record.message.slice(0, 2000)],
    { transaction },
  );
}

const AlertsService: ServiceSchema<DbSettings, DbMethods & AlertsMethods, DbServiceThis & AlertsState> = {
  name: "alerts",
  mixins: [
    dbMixin({
      service: "alerts",
      migrations: alertMigrations,
    }),
    consumerMixin<AlertsThis>({ group: "alerts", handlers: { "log.error": recordErrorLog } }),
  ],

  created(this: AlertsThis) {
    this.openBreakers = new Map();
    const { smtpUrl } = config().alerts;
    if (smtpUrl) this.mailer = nodemailer.createTransport(smtpUrl);
  },

  async started(this: AlertsThis) {
    if (channels().length === 0) {
      this.logger.warn("No alert channel configured (ALERT_SMTP_URL, ALERT_WEBHOOK_URL): incidents are only recorded");
    }
    this.timer = setInterval(() => {
      // One evaluation at a time: a slow one is not overtaken by the next tick.
      this.evaluation ??= this.evaluate()
        .catch((err) => this.logger.warn(`Alert evaluation failed: ${(err as Error).message}`))
        .finally(() => (this.evaluation = undefined));
    }, config().alerts.intervalMs);
  },

  async stopped(this: AlertsThis) {
    clearInterval(this.timer);
    await this.evaluation;
    this.mailer?.close();
  },

  events: {
    // Breakers live in each calling node's memory; Moleculer broadcasts their changes to the cluster.
    "$circuit-breaker.opened": {
      handler(this: AlertsThis, ctx: Context<BreakerEvent>) {
        const key = `${ctx.nodeID ?? "?"}->${ctx.params.action}@${ctx.params.nodeID}`;
        const summary = `Circuit breaker open for ${ctx.params.action} on node ${ctx.params.nodeID} (seen from ${ctx.nodeID})`;
        this.openBreakers.set(key, summary);
      },
    },
    "$circuit-breaker.closed": {
      handler(this: AlertsThis, ctx: Context<BreakerEvent>) {
        this.openBreakers.delete(`${ctx.nodeID ?? "?"}->${ctx.params.action}@${ctx.params.nodeID}`);
      },
    },
  },

  actions: {
    /** Incidents, newest first, by status and rule. `alerts:read`. */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["alerts:read"],
      params: {
        status: { type: "enum", values: ["FIRING", "RESOLVED"], optional: true },
        rule: { type: "enum", values: [...ALERT_RULES], optional: true },
        page: { type: "number", integer: true, positive: true, convert: true, default: 1 },
        pageSize: { type: "number", integer: true, positive: true, max: MAX_PAGE_SIZE, convert: true, default: 20 },
        $$strict: true,
      },
      async handler(
        this: AlertsThis,
        ctx: Context<{ status?: IncidentStatus; rule?: AlertRule; page: number; pageSize: number }>,
      ): Promise<IncidentPage> {
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
        const cfg = config().alerts;
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
          channels: channels(),
          rules: ALERT_RULES.map((rule) => ({ rule, firesOn: thresholds[rule], open: openOf(rule) })),
        };
      },
    },

    /** One incident, with the notices sent about it (each channel's, firing and resolved). `alerts:read`. */
    get: {
      rest: "GET /:id",
      permissions: ["alerts:read"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: AlertsThis, ctx: Context<{ id: string }>): Promise<Incident & { notices: Notice[] }> {
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
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: AlertsThis, ctx: Context<{ id: string }, CallerMeta>): Promise<Incident> {
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

  methods: {
    /** What every rule sees now. Calls other services as the system; one that does not answer leaves its rule out. */
    async observe(this: AlertsThis): Promise<Observation> {
      const cfg = config().alerts;
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

    async evaluate(this: AlertsThis): Promise<void> {
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

    async reconcileRule(this: AlertsThis, rule: AlertRule, firing: Firing[], transaction: Transaction) {
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
      const decision = reconcile(firing, open, lastNotified, new Date(), config().alerts.cooldownMs);
      const notify = async (incidentId: string, kind: "firing" | "resolved") => {
        for (const channel of channels()) {
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

    /** Claims the notifications that are due and sends each; a failure is retried later with backoff. */
    async sendDue(this: AlertsThis): Promise<void> {
      const due = await this.rows<DueNotification>(
        `WITH claimed AS (
           UPDATE notifications SET next_attempt_at = now() + make_interval(secs => $1)
           WHERE id IN (SELECT id FROM notifications WHERE status = 'PENDING' AND next_attempt_at <= now()
                        ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING *)
         SELECT c.id, c.kind, c.channel, c.attempts, i.rule, i.key, i.summary, i.opened_at, i.resolved_at
         FROM claimed c JOIN incidents i ON i.id = c.incident_id ORDER BY c.created_at`,
        [CLAIM_MS / 1000, SEND_BATCH],
      );
      for (const notification of due) {
        try {
          await this.deliver(notification);
          await this.rows("UPDATE notifications SET status = 'SENT', sent_at = now() WHERE id = $1 RETURNING id", [
            notification.id,
          ]);
        } catch (err) {
          const attempts = notification.attempts + 1;
          const gaveUp = attempts >= MAX_SEND_ATTEMPTS;
          const delayMs = backoff(attempts + 1, 1000, MAX_RETRY_DELAY_MS);
          await this.rows(
            `UPDATE notifications SET attempts = $2, last_error = $3, status = $4,
               next_attempt_at = now() + make_interval(secs => $5) WHERE id = $1 RETURNING id`,
            [notification.id, attempts, (err as Error).message, gaveUp ? "FAILED" : "PENDING", delayMs / 1000],
          );
          this.logger.warn(
            `Alert ${notification.kind} notice by ${notification.channel} failed (attempt ${attempts}): ` +
              `${(err as Error).message}${gaveUp ? "; giving up" : ""}`,
          );
        }
      }
    },

    async deliver(this: AlertsThis, notification: DueNotification): Promise<void> {
      const cfg = config().alerts;
      const { subject, body } = notificationText(notification.kind, {
        rule: notification.rule,
        key: notification.key,
        summary: notification.summary,
        openedAt: notification.opened_at,
        resolvedAt: notification.resolved_at,
      });
      if (notification.channel === "email") {
        if (!this.mailer) throw new Error("ALERT_SMTP_URL is no longer configured");
        await this.mailer.sendMail({ from: cfg.emailFrom, to: cfg.emailTo, subject, text: body });
        return;
      }
      if (!cfg.webhookUrl) throw new Error("ALERT_WEBHOOK_URL is no longer configured");
      const res = await fetch(cfg.webhookUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: `${subject}\n${body}` }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`webhook answered ${res.status}`);
    },
  },
};

export default AlertsService;
