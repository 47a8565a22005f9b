import { inboxAndOutboxMigration } from "../../lib/outbox";

export default inboxAndOutboxMigration("0002-create-inbox-and-outbox");
