/**
 * Sending alert notifications. They are written with their incident (mixins/alerts-evaluation.mixin.ts) and sent
 * after it, by email over SMTP or to a Slack-compatible webhook, retried with backoff until the channel takes them:
 * an SMTP server that is down delays an alert, it does not lose it.
 */
import type { Service, ServiceSchema } from "moleculer";
import nodemailer from "nodemailer";
import { notificationText } from "../lib/alerts";
import type { DueNotification } from "../lib/alert-rows";
import { backoff } from "../lib/backoff";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

const MAX_SEND_ATTEMPTS = 10;
const MAX_RETRY_DELAY_MS = 300_000;
const SEND_BATCH = 50;
/** A claimed notification is not picked up by another evaluator for this long (its sender crashed mid-send). */
const CLAIM_MS = 60_000;

export interface AlertsNotificationsMethods {
  sendDue(): Promise<void>;
  deliver(notification: DueNotification): Promise<void>;
}

interface NotificationsState {
  mailer?: nodemailer.Transporter;
}

type NotificationsThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  AlertsNotificationsMethods &
  NotificationsState;

export function alertsNotificationsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, AlertsNotificationsMethods, NotificationsState, NotificationsThis>> =
    {
      created(this: NotificationsThis) {
        const { smtpUrl } = this.settings.config.alerts;
        if (smtpUrl) this.mailer = nodemailer.createTransport(smtpUrl);
      },

      /** Runs after the service's own `stopped`, which waits for the evaluation (and its sends) under way. */
      stopped(this: NotificationsThis) {
        this.mailer?.close();
      },

      methods: {
        /** Claims the notifications that are due and sends each; a failure is retried later with backoff. */
        async sendDue(this: NotificationsThis): Promise<void> {
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

        async deliver(this: NotificationsThis, notification: DueNotification): Promise<void> {
          const cfg = this.settings.config.alerts;
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
  return schema as Partial<ServiceSchema>;
}
