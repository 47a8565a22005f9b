import type { Migration } from "../../lib/database";

const ADDED = ["payments:read", "payments:admin", "shipping:read", "shipping:admin"];

/** Operators follow an order's payments and shipments and can simulate provider outages (the saga issue). */
const migration: Migration = {
  name: "0003-operator-payments-shipping",
  async up({ sequelize }) {
    await sequelize.query(
      `UPDATE roles SET permissions = permissions || ARRAY(SELECT unnest($1::text[]) EXCEPT SELECT unnest(permissions)),
         updated_at = now()
       WHERE built_in AND name = 'operator'`,
      { bind: [ADDED] },
    );
  },
};

export default migration;
