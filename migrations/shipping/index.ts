/** The shipping database's migrations, in the order they run. Append; never edit one that has shipped. */
import createShipments from "./0001-create-shipments";
import createOutbox from "./0002-create-outbox";
import notifyOutbox from "./0003-notify-outbox";

export default [createShipments, createOutbox, notifyOutbox];
