/** The products database's migrations, in the order they run. Append; never edit one that has shipped. */
import createProducts from "./0001-create-products";
import createOutbox from "./0002-create-outbox";
import createStockReservations from "./0003-create-stock-reservations";
import notifyOutbox from "./0004-notify-outbox";

export default [createProducts, createOutbox, createStockReservations, notifyOutbox];
