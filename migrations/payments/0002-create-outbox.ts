import { outboxMigration } from "../../lib/outbox";

/** Audit records of this service's actions leave through the outbox, in the action's transaction. */
export default outboxMigration("0002-create-outbox");
