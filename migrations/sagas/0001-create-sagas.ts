import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-sagas",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE sagas (
        id uuid PRIMARY KEY,
        definition varchar(100) NOT NULL,
        subject_id varchar(200) NOT NULL,
        status varchar(16) NOT NULL CHECK (status IN ('RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'FAILED')),
        cursor jsonb NOT NULL,
        completed integer NOT NULL DEFAULT 0,
        context jsonb NOT NULL,
        reason text,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
      );
      CREATE UNIQUE INDEX sagas_subject_idx ON sagas (definition, subject_id);
      CREATE INDEX sagas_status_idx ON sagas (status, updated_at DESC);
      -- The timeline: every action the engine ran (or decided not to), in order.
      CREATE TABLE saga_events (
        id bigserial PRIMARY KEY,
        saga_id uuid NOT NULL REFERENCES sagas (id),
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        step varchar(100) NOT NULL,
        attempt integer NOT NULL,
        outcome varchar(16) NOT NULL,
        message text,
        duration_ms integer
      );
      CREATE INDEX saga_events_saga_idx ON saga_events (saga_id, id);
    `);
  },
};

export default migration;
