import { inboxMigration } from "../../lib/outbox";

export default inboxMigration("0002-create-inbox");
