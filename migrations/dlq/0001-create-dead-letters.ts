import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-dead-letters",
  async up({ sequelize }) {
    await sequelize.query(`
      -- One row per message and consumer group that gave up on it; a message that fails again after a replay
      -- reopens its row and appends to its failures.
      CREATE TABLE dead_letters (
        id uuid PRIMARY KEY,
        channel varchar(200) NOT NULL,
        consumer_group varchar(200) NOT NULL,
        message_id text,
        message jsonb NOT NULL,
        replayable boolean NOT NULL,
        status varchar(16) NOT NULL DEFAULT 'PENDING'
          CHECK (status IN ('PENDING', 'REPLAYED', 'RESOLVED', 'DISCARDED')),
        attempts integer NOT NULL,
        error jsonb NOT NULL,
        error_type varchar(100) NOT NULL,
        failures jsonb NOT NULL,
        correlation_id text,
        replay_count integer NOT NULL DEFAULT 0,
        last_replayed_at timestamptz,
        last_replayed_by text,
        resolved_at timestamptz,
        discarded_at timestamptz,
        discarded_by text,
        first_failed_at timestamptz NOT NULL,
        failed_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX dead_letters_open_message ON dead_letters (consumer_group, message_id)
        WHERE message_id IS NOT NULL AND status <> 'DISCARDED';
      CREATE INDEX dead_letters_status_failed ON dead_letters (status, failed_at DESC);
    `);
  },
  async down({ sequelize }) {
    await sequelize.query("DROP TABLE dead_letters");
  },
};

export default migration;
