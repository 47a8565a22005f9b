import type { Migration } from "../../lib/database";

/** An open incident can be acknowledged: someone has it in hand. Who and when are kept; it stays open until it clears. */
const migration: Migration = {
  name: "0003-add-acknowledgement",
  async up({ sequelize }) {
    await sequelize.query(`
      ALTER TABLE incidents ADD COLUMN acknowledged_at timestamptz, ADD COLUMN acknowledged_by text;
      CREATE INDEX notifications_incident_idx ON notifications (incident_id);
    `);
  },
};

export default migration;
