import type { Migration } from "../../lib/database";

/** The request that placed the order: its correlation id on the bus and its trace id, for finding what it caused. */
const migration: Migration = {
  name: "0003-add-request-id",
  async up({ sequelize }) {
    await sequelize.query("ALTER TABLE orders ADD COLUMN request_id varchar(200)");
  },
};

export default migration;
