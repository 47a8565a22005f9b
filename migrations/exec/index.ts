/** The exec database's migrations, in the order they run. Append; never edit one that has shipped. */
import createExec from "./0001-create-exec";
import createInboxAndOutbox from "./0002-create-inbox-and-outbox";
import lowStockRule from "./0003-low-stock-rule";
import notifyOutbox from "./0004-notify-outbox";

export default [createExec, createInboxAndOutbox, lowStockRule, notifyOutbox];
