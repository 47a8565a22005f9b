/** The alerts database's migrations, in the order they run. Append; never edit one that has shipped. */
import createAlerts from "./0001-create-alerts";
import createInbox from "./0002-create-inbox";
import addAcknowledgement from "./0003-add-acknowledgement";

export default [createAlerts, createInbox, addAcknowledgement];
