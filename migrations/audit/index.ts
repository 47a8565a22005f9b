/** The audit database's migrations, in the order they run. Append; never edit one that has shipped. */
import createAuditRecords from "./0001-create-audit-records";
import createInbox from "./0002-create-inbox";
import createEventStore from "./0003-create-event-store";

export default [createAuditRecords, createInbox, createEventStore];
