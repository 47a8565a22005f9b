import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0005-add-record-anchors",
  async up({ sequelize }) {
    // Each record's hash signed with AUDIT_ANCHOR_KEY (lib/audit.ts). Records written before this migration have
    // none, and verify reports the first of them as not anchored: nothing outside the database vouches for them.
    await sequelize.query("ALTER TABLE audit_records ADD COLUMN anchor char(64)");
  },
};

export default migration;
