import type { Migration } from "../../lib/database";

const ADDED = ["dashboard:read"];

/** Operators see the web console's dashboard (the web UI issue). */
const migration: Migration = {
  name: "0004-operator-dashboard",
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
