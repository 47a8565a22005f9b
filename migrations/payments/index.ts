/** The payments database's migrations, in the order they run. Append; never edit one that has shipped. */
import createPayments from "./0001-create-payments";

export default [createPayments];
