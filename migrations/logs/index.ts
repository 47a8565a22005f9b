/** The logs database's migrations, in the order they run. Append; never edit one that has shipped. */
import createLogRecords from "./0001-create-log-records";
import createInboxAndOutbox from "./0002-create-inbox-and-outbox";
import createSpans from "./0003-create-spans";
import notifyOutbox from "./0004-notify-outbox";

export default [createLogRecords, createInboxAndOutbox, createSpans, notifyOutbox];
