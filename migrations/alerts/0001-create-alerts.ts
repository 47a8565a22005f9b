import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-alerts",
  async up({ sequelize }) {
    await sequelize.query(`
      -- Error-level log records seen on the bus (log.error), kept for the error-rate rule's window.
      CREATE TABLE error_logs (
        id bigserial PRIMARY KEY,
        time timestamptz NOT NULL,
        node_id varchar(200) NOT NULL,
        module varchar(200) NOT NULL,
        message text NOT NULL
      );
      CREATE INDEX error_logs_time_idx ON error_logs (time);
      CREATE TABLE incidents (
        id uuid PRIMARY KEY,
        rule varchar(64) NOT NULL,
        key varchar(400) NOT NULL,
        status varchar(16) NOT NULL CHECK (status IN ('FIRING', 'RESOLVED')),
        summary text NOT NULL,
        notified boolean NOT NULL,
        opened_at timestamptz NOT NULL DEFAULT now(),
        resolved_at timestamptz
      );
      -- De-duplication holds even if two evaluators ever raced: one open incident per rule and key.
      CREATE UNIQUE INDEX incidents_open_key ON incidents (rule, key) WHERE status = 'FIRING';
      CREATE INDEX incidents_opened_idx ON incidents (opened_at DESC);
      -- The notifications' outbox: written with the incident, sent after, retried until the channel takes them.
      CREATE TABLE notifications (
        id uuid PRIMARY KEY,
        incident_id uuid NOT NULL REFERENCES incidents (id),
        kind varchar(16) NOT NULL CHECK (kind IN ('firing', 'resolved')),
        channel varchar(16) NOT NULL CHECK (channel IN ('email', 'webhook')),
        status varchar(16) NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz
      );
      CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'PENDING';
    `);
  },
};

export default migration;
