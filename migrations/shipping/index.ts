/** The shipping database's migrations, in the order they run. Append; never edit one that has shipped. */
import createShipments from "./0001-create-shipments";

export default [createShipments];
