import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-audit-records",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE audit_records (
        seq bigserial PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        kind varchar(16) NOT NULL CHECK (kind IN ('action', 'event')),
        name varchar(200) NOT NULL,
        actor_type varchar(16) NOT NULL,
        actor_id varchar(200),
        entity_type varchar(100),
        entity_id varchar(200),
        request_id varchar(200),
        node_id varchar(200),
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        change jsonb NOT NULL,
        prev_hash char(64) NOT NULL,
        hash char(64) NOT NULL
      );
      CREATE INDEX audit_records_entity_idx ON audit_records (entity_type, entity_id, seq);
      CREATE INDEX audit_records_actor_idx ON audit_records (actor_id, seq);
      CREATE INDEX audit_records_request_idx ON audit_records (request_id);
      -- Append-only: no role may change or remove a record through SQL without first disabling this trigger (which
      -- only the table's owner or a superuser can, and the hash chain then shows what they did).
      CREATE FUNCTION audit_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_records is append-only'; END $$;
      CREATE TRIGGER audit_records_no_update BEFORE UPDATE OR DELETE ON audit_records
        FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();
      CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
        FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();
      REVOKE UPDATE, DELETE, TRUNCATE ON audit_records FROM PUBLIC;
    `);
  },
};

export default migration;
