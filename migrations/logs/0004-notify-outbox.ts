import { outboxNotifyMigration } from "../../lib/outbox";

export default outboxNotifyMigration("0004-notify-outbox");
