import { outboxNotifyMigration } from "../../lib/outbox";

export default outboxNotifyMigration("0005-notify-outbox");
