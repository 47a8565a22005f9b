import type { Migration } from "../../lib/database";

/**
 * When a saga's current command became (or becomes) due: the clock of the sweeper, which re-sends the command of a
 * saga that has not moved for SAGA_STALL_AFTER past it. `updated_at` cannot serve: a retry scheduled for later leaves
 * it behind on purpose.
 */
const migration: Migration = {
  name: "0003-add-due-at",
  async up({ sequelize }) {
    await sequelize.query(`
      ALTER TABLE sagas ADD COLUMN due_at timestamptz NOT NULL DEFAULT now();
      UPDATE sagas SET due_at = updated_at;
      CREATE INDEX sagas_due_idx ON sagas (due_at) WHERE status IN ('RUNNING', 'COMPENSATING');
    `);
  },
};

export default migration;
