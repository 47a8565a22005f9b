/**
 * The transactional outbox, as plain SQL: a service that changes data and must tell others writes the event's
 * envelope into its own `outbox` table in the same transaction as the change; a relay (mixins/outbox.mixin.ts)
 * publishes unsent rows in order and marks them sent. A crash between publish and mark publishes the row again,
 * with the same envelope id, which JetStream's duplicate window and the consumers' inbox drop.
 */
import type { Migration } from "./database";

/** The migration that gives a service database its outbox. */
export function outboxMigration(name: string): Migration {
  return {
    name,
    async up({ sequelize }) {
      await sequelize.query(`
        CREATE TABLE outbox (
          seq bigserial PRIMARY KEY,
          id uuid NOT NULL UNIQUE,
          channel varchar(200) NOT NULL,
          envelope jsonb NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          -- Not published before this time: how a saga schedules its next try.
          available_at timestamptz NOT NULL DEFAULT now(),
          attempts integer NOT NULL DEFAULT 0,
          last_error text,
          sent_at timestamptz
        );
        CREATE INDEX outbox_unsent_idx ON outbox (seq) WHERE sent_at IS NULL;
      `);
    },
    async down({ sequelize }) {
      await sequelize.query("DROP TABLE outbox");
    },
  };
}

/** The channel on which a commit that wrote outbox rows wakes the relays of that database (mixins/outbox.mixin.ts). */
export const OUTBOX_NOTIFY_CHANNEL = "outbox";

/**
 * The migration that makes every transaction writing outbox rows notify the relays when it commits (one notification
 * per transaction: PostgreSQL folds repeats), so a relay sleeps until there may be work instead of polling.
 */
export function outboxNotifyMigration(name: string): Migration {
  return {
    name,
    async up({ sequelize }) {
      await sequelize.query(`
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('${OUTBOX_NOTIFY_CHANNEL}', '');
          RETURN NULL;
        END $$;
        CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
      `);
    },
    async down({ sequelize }) {
      await sequelize.query("DROP TRIGGER outbox_notify ON outbox; DROP FUNCTION outbox_notify()");
    },
  };
}

/**
 * The migration that gives a consumer's database its inbox: the ids of the messages each consumer group has
 * processed, written in the same transaction as the processing, so a redelivered message is a no-op.
 */
export function inboxMigration(name: string): Migration {
  return {
    name,
    async up({ sequelize }) {
      await sequelize.query(`
        CREATE TABLE inbox (
          consumer_group varchar(200) NOT NULL,
          message_id uuid NOT NULL,
          processed_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (consumer_group, message_id)
        );
      `);
    },
    async down({ sequelize }) {
      await sequelize.query("DROP TABLE inbox");
    },
  };
}

/** Both, in one migration: for a service that consumes events and publishes its own. */
export function inboxAndOutboxMigration(name: string): Migration {
  const inbox = inboxMigration(name);
  const outbox = outboxMigration(name);
  return {
    name,
    async up(context) {
      await inbox.up(context);
      await outbox.up(context);
    },
  };
}

/**
 * Outbox rows passed as one JSON array parameter (`param`, e.g. `$1`: `[{ id, channel, envelope }]`), as the `FROM`
 * item of an `INSERT INTO outbox ... SELECT`: so a statement can write several rows, or a change and its rows at once.
 */
export function outboxRowsFrom(param: string): string {
  return `jsonb_to_recordset(${param}::jsonb) AS outbox_row(id uuid, channel text, envelope jsonb)`;
}
