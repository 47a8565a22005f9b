/** The alert notification channels (email over SMTP, Slack-compatible webhook) that the configuration turns on. */
import type { NotificationChannel } from "../contracts/alerts";
import { config } from "./config";

/** The channels configured now; notifications are written for these. */
export function channels(): NotificationChannel[] {
  const { smtpUrl, webhookUrl } = config().alerts;
  return [...(smtpUrl ? (["email"] as const) : []), ...(webhookUrl ? (["webhook"] as const) : [])];
}
