import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-log-records",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE log_records (
        id bigserial PRIMARY KEY,
        time timestamptz NOT NULL,
        level varchar(8) NOT NULL,
        node_id varchar(200) NOT NULL,
        module varchar(200) NOT NULL,
        request_id varchar(200),
        message text NOT NULL,
        fields jsonb
      );
      CREATE INDEX log_records_time_idx ON log_records (time DESC);
      CREATE INDEX log_records_request_idx ON log_records (request_id) WHERE request_id IS NOT NULL;
      CREATE INDEX log_records_level_idx ON log_records (level, time DESC);
    `);
  },
};

export default migration;
