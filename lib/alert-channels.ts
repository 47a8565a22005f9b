/** The alert notification channels (email over SMTP, Slack-compatible webhook) that the configuration turns on. */
import type { NotificationChannel } from "../contracts/alerts";
import type { Config } from "./config";

/** The channels the configuration turns on; notifications are written for these. */
export function channels({ smtpUrl, webhookUrl }: Config["alerts"]): NotificationChannel[] {
  return [...(smtpUrl ? (["email"] as const) : []), ...(webhookUrl ? (["webhook"] as const) : [])];
}
