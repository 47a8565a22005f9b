import type { Migration } from "../../lib/database";

/** Why an operator discarded a dead letter, kept beside who and when. */
const migration: Migration = {
  name: "0003-add-discard-reason",
  async up({ sequelize }) {
    await sequelize.query("ALTER TABLE dead_letters ADD COLUMN discard_reason text");
  },
};

export default migration;
