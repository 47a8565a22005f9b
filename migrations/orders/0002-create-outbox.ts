import { outboxMigration } from "../../lib/outbox";

export default outboxMigration("0002-create-outbox");
