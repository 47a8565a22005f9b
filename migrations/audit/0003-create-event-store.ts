import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0003-create-event-store",
  async up({ sequelize }) {
    await sequelize.query(`
      -- Domain events in the order they were stored (position), and per stream (the entity they are about).
      CREATE TABLE events (
        position bigserial PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        stream_type varchar(100) NOT NULL,
        stream_id varchar(200) NOT NULL,
        stream_version integer NOT NULL,
        type varchar(200) NOT NULL,
        version integer NOT NULL,
        occurred_at timestamptz NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        envelope jsonb NOT NULL,
        UNIQUE (stream_type, stream_id, stream_version)
      );
      CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();
      REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC;
    `);
  },
};

export default migration;
