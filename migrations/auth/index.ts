/** The auth database's migrations, in the order they run. Append; never edit one that has shipped. */
import createAuth from "./0001-create-auth";
import usersReadOwn from "./0002-users-read-own";
import operatorPaymentsShipping from "./0003-operator-payments-shipping";
import operatorDashboard from "./0004-operator-dashboard";
import passwordChangeAndRevocation from "./0005-password-change-and-revocation";

export default [createAuth, usersReadOwn, operatorPaymentsShipping, operatorDashboard, passwordChangeAndRevocation];
