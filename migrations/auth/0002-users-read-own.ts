import type { Migration } from "../../lib/database";

/** Every built-in non-admin role may read its own account (`GET /api/auth/users/:id` with one's own id). */
const migration: Migration = {
  name: "0002-users-read-own",
  async up({ sequelize }) {
    await sequelize.query(
      `UPDATE roles SET permissions = array_append(permissions, 'users:read:own'), updated_at = now()
       WHERE built_in AND name IN ('operator', 'customer') AND NOT 'users:read:own' = ANY(permissions)`,
    );
  },
  async down({ sequelize }) {
    await sequelize.query("UPDATE roles SET permissions = array_remove(permissions, 'users:read:own') WHERE built_in");
  },
};

export default migration;
