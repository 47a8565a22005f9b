/** The audit database's migrations, in the order they run. Append; never edit one that has shipped. */
import createAuditRecords from "./0001-create-audit-records";
import createInbox from "./0002-create-inbox";
import createEventStore from "./0003-create-event-store";
import createSchemaRegistry from "./0004-create-schema-registry";
import addRecordAnchors from "./0005-add-record-anchors";
import createMissingRecords from "./0006-create-missing-records";

export default [
  createAuditRecords,
  createInbox,
  createEventStore,
  createSchemaRegistry,
  addRecordAnchors,
  createMissingRecords,
];
