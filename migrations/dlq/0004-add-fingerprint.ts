import type { Migration } from "../../lib/database";

/**
 * What a dead letter's failure says, made comparable: the first field message of the error's `data` (a validation
 * error's "The 'title' field is required"), else the error's message, with ids and numbers replaced, so the same
 * failure of different messages reads the same.
 */
const SUMMARY = `regexp_replace(
  regexp_replace(
    left(COALESCE(error->'data'->0->>'message', error->'data'->>'message', error->>'message', ''), 500),
    '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'gi'),
  '[0-9]+', '<n>', 'g')`;

/**
 * A dead letter's failure fingerprint: its channel, consumer group, error type and summary. Generated columns, so every
 * row has them (those written before included) and no writer can get them wrong; grouped by `GET /api/dlq/groups`.
 */
const migration: Migration = {
  name: "0004-add-fingerprint",
  async up({ sequelize }) {
    await sequelize.query(`
      ALTER TABLE dead_letters
        ADD COLUMN error_summary text GENERATED ALWAYS AS (${SUMMARY}) STORED,
        ADD COLUMN fingerprint char(32) GENERATED ALWAYS AS (
          md5(channel || E'\\n' || consumer_group || E'\\n' || error_type || E'\\n' || ${SUMMARY})) STORED;
      CREATE INDEX dead_letters_status_fingerprint_idx ON dead_letters (status, fingerprint);
    `);
  },
};

export default migration;
