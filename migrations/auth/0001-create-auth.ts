import type { Migration } from "../../lib/database";

/** Roles every installation starts with (as of this migration; later ones amend them); admins edit them afterwards. */
export const BUILT_IN_ROLES: Record<string, { description: string; permissions: string[] }> = {
  admin: { description: "Everything, including users, roles, clients and keys", permissions: ["*"] },
  operator: {
    description: "Runs the platform: catalog, all orders, sagas, dead letters, audit, logs, alerts",
    permissions: [
      "products:write",
      "orders:read:any",
      "orders:cancel:any",
      "sagas:*",
      "dlq:*",
      "exec:admin",
      "audit:read",
      "logs:read",
      "alerts:*",
    ],
  },
  customer: {
    description: "Places and follows their own orders",
    permissions: ["orders:create", "orders:read:own", "orders:cancel:own"],
  },
};

const migration: Migration = {
  name: "0001-create-auth",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE roles (
        name varchar(64) PRIMARY KEY,
        description text NOT NULL DEFAULT '',
        permissions text[] NOT NULL DEFAULT '{}',
        built_in boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE users (
        id uuid PRIMARY KEY,
        email varchar(320) NOT NULL,
        display_name varchar(200) NOT NULL,
        password_hash text NOT NULL,
        roles text[] NOT NULL DEFAULT '{customer}',
        status varchar(16) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
        version integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX users_email_key ON users (lower(email));
      CREATE TABLE refresh_tokens (
        id uuid PRIMARY KEY,
        family_id uuid NOT NULL,
        user_id uuid NOT NULL REFERENCES users (id),
        token_hash char(64) NOT NULL UNIQUE,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
      CREATE TABLE signing_keys (
        kid varchar(64) PRIMARY KEY,
        algorithm varchar(16) NOT NULL,
        private_key text NOT NULL,
        public_jwk jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz
      );
      CREATE TABLE oauth_clients (
        client_id varchar(64) PRIMARY KEY,
        name varchar(200) NOT NULL,
        secret_hash text NOT NULL,
        scopes text[] NOT NULL DEFAULT '{}',
        status varchar(16) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `);
    for (const [name, role] of Object.entries(BUILT_IN_ROLES)) {
      await sequelize.query("INSERT INTO roles (name, description, permissions, built_in) VALUES ($1, $2, $3, true)", {
        bind: [name, role.description, role.permissions],
      });
    }
  },
  async down({ sequelize }) {
    await sequelize.query("DROP TABLE oauth_clients, signing_keys, refresh_tokens, users, roles");
  },
};

export default migration;
