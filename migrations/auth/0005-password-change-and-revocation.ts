import type { Migration } from "../../lib/database";

/**
 * A password that must be changed at first sign-in (a generated one), and what gateways need to refuse access tokens
 * before they expire: each user and client has a token generation that access tokens carry (`gen`), raised when a
 * change must end the tokens already issued, with the time it was raised (gateways keep that deny-list only as long
 * as such tokens can live).
 */
const migration: Migration = {
  name: "0005-password-change-and-revocation",
  async up({ sequelize }) {
    await sequelize.query(`
      ALTER TABLE users
        ADD COLUMN must_change_password boolean NOT NULL DEFAULT false,
        ADD COLUMN token_generation integer NOT NULL DEFAULT 0,
        ADD COLUMN tokens_revoked_at timestamptz;
      ALTER TABLE oauth_clients
        ADD COLUMN token_generation integer NOT NULL DEFAULT 0,
        ADD COLUMN tokens_revoked_at timestamptz;
      CREATE INDEX users_tokens_revoked_at_idx ON users (tokens_revoked_at) WHERE tokens_revoked_at IS NOT NULL;
      CREATE INDEX oauth_clients_tokens_revoked_at_idx ON oauth_clients (tokens_revoked_at)
        WHERE tokens_revoked_at IS NOT NULL;
    `);
  },
};

export default migration;
