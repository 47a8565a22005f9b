import type { Migration } from "../../lib/database";

/**
 * Replays as records. `replay_operations` are batch replays run by the server (a frozen selection, a rate, who
 * started or cancelled them), so they survive a reload or a restart. `replays` holds one row per letter replayed or
 * waiting to be: alone (no operation) or as a place in an operation; once sent, its attempt and what became of it
 * (resolved, failed again with which error, still pending). A dead letter's rows are its replay lineage.
 */
const migration: Migration = {
  name: "0005-create-replays",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE replay_operations (
        id uuid PRIMARY KEY,
        selection jsonb NOT NULL,
        status text NOT NULL DEFAULT 'RUNNING' CHECK (status IN ('RUNNING', 'CANCELLED', 'DONE')),
        total integer NOT NULL,
        rate_per_second integer NOT NULL CHECK (rate_per_second > 0),
        next_due_at timestamptz NOT NULL DEFAULT now(),
        started_by text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        cancelled_by text,
        finished_at timestamptz
      );
      CREATE INDEX replay_operations_running_idx ON replay_operations (next_due_at) WHERE status = 'RUNNING';
      CREATE INDEX replay_operations_started_idx ON replay_operations (started_at DESC);

      CREATE TABLE replays (
        id uuid PRIMARY KEY,
        dead_letter_id uuid NOT NULL REFERENCES dead_letters (id),
        operation_id uuid REFERENCES replay_operations (id),
        position integer,
        state text NOT NULL CHECK (state IN ('WAITING', 'SENT', 'SKIPPED', 'CANCELLED')),
        detail text,
        attempt integer,
        replayed_by text,
        replayed_at timestamptz,
        outcome text CHECK (outcome IN ('PENDING', 'RESOLVED', 'FAILED')),
        outcome_error jsonb,
        outcome_at timestamptz
      );
      CREATE INDEX replays_operation_idx ON replays (operation_id, position) WHERE operation_id IS NOT NULL;
      CREATE INDEX replays_dead_letter_idx ON replays (dead_letter_id, replayed_at);
      CREATE INDEX replays_pending_idx ON replays (dead_letter_id) WHERE outcome = 'PENDING';
    `);
  },
};

export default migration;
