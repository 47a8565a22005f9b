import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0006-create-missing-records",
  async up({ sequelize }) {
    await sequelize.query(`
      -- Records the audit group gave up on (dead-lettered): until the record itself is in audit_records (a replay
      -- from the dead-letter queue), verify reports the trail incomplete. Noted before the dead letter is published,
      -- so no record leaves the trail unnoticed.
      CREATE TABLE missing_records (
        record_id text PRIMARY KEY,
        name text,
        dead_letter_id uuid NOT NULL,
        error jsonb NOT NULL,
        noted_at timestamptz NOT NULL DEFAULT now()
      );
    `);
  },
};

export default migration;
