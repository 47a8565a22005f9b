import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0004-create-schema-registry",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE event_schemas (
        type varchar(200) NOT NULL,
        version integer NOT NULL CHECK (version > 0),
        payload jsonb NOT NULL,
        description text,
        registered_by varchar(200) NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (type, version)
      );
      -- A registered version is a contract with every producer and consumer of the type: it never changes.
      CREATE FUNCTION event_schemas_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'event_schemas is append-only'; END $$;
      CREATE TRIGGER event_schemas_no_update BEFORE UPDATE OR DELETE ON event_schemas
        FOR EACH ROW EXECUTE FUNCTION event_schemas_append_only();
    `);
  },
};

export default migration;
