/** The sagas database's migrations, in the order they run. Append; never edit one that has shipped. */
import createSagas from "./0001-create-sagas";
import createInboxAndOutbox from "./0002-create-inbox-and-outbox";
import addDueAt from "./0003-add-due-at";
import addLeases from "./0004-add-leases";
import notifyOutbox from "./0005-notify-outbox";

export default [createSagas, createInboxAndOutbox, addDueAt, addLeases, notifyOutbox];
