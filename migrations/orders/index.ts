/** The orders database's migrations, in the order they run. Append; never edit one that has shipped. */
import createOrders from "./0001-create-orders";
import createOutbox from "./0002-create-outbox";
import addRequestId from "./0003-add-request-id";
import addAnnouncedAt from "./0004-add-announced-at";
import notifyOutbox from "./0005-notify-outbox";

export default [createOrders, createOutbox, addRequestId, addAnnouncedAt, notifyOutbox];
