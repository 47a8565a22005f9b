import { outboxNotifyMigration } from "../../lib/outbox";

export default outboxNotifyMigration("0003-notify-outbox");
