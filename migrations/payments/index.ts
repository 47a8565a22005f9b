/** The payments database's migrations, in the order they run. Append; never edit one that has shipped. */
import createPayments from "./0001-create-payments";
import createOutbox from "./0002-create-outbox";
import notifyOutbox from "./0003-notify-outbox";

export default [createPayments, createOutbox, notifyOutbox];
