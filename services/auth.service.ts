/**
 * auth: users and their passwords, roles and their permissions, access tokens (ES256 JWTs) with rotating signing
 * keys published as a JWKS, refresh tokens with rotation and reuse detection, and OAuth2 clients (client
 * credentials grant). Its own PostgreSQL database.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import { UniqueConstraintError, type Transaction } from "sequelize";
import {
  displayNameProblem,
  emailProblem,
  normalizeDisplayName,
  normalizeEmail,
  passwordProblem,
} from "../lib/account-input";
import { DEFAULT_ADMIN_EMAIL, config } from "../lib/config";
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  OAuthError,
  PasswordChangeRequiredError,
  SigningKeyUnavailableError,
  UnauthorizedError,
  invalidFields,
  type FieldProblem,
} from "../lib/errors";
import { selectPage } from "../lib/database";
import type { GatewayMeta } from "../lib/gateway-meta";
import { timedCheck } from "../lib/health";
import type { ReadinessCheck } from "../contracts/health";
import { pageOf, pageParams, type Page, type PageQuery } from "../lib/paging";
import { hashPassword, verifyPassword } from "../lib/passwords";
import { ownerScope } from "../lib/permissions";
import { subjectOf, type Revocation } from "../lib/revocation";
import { developmentSecret } from "../lib/secrets";
import {
  ALGORITHM,
  decryptPrivateKey,
  encryptPrivateKey,
  generateSigningKey,
  signAccessToken,
  type AccessClaims,
  type PublicJwk,
} from "../lib/signing-keys";
import authMigrations from "../migrations/auth";
import type { CallerMeta } from "../contracts/caller";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import type { UserStatus, User, TokenPair, Role, OAuthClient, OAuthMeta } from "../contracts/auth";

interface UserRow {
  id: string;
  email: string;
  display_name: string;
  password_hash: string;
  roles: string[];
  status: UserStatus;
  must_change_password: boolean;
  token_generation: number;
  tokens_revoked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface KeyRow {
  kid: string;
  private_key: string;
  public_jwk: PublicJwk;
  created_at: Date;
  retired_at: Date | null;
}

interface ClientRow {
  client_id: string;
  name: string;
  secret_hash: string;
  scopes: string[];
  status: UserStatus;
  token_generation: number;
  tokens_revoked_at: Date | null;
  created_at: Date;
}

const cfg = config();
const PASSWORD = { type: "string", min: 10, max: 128 } as const;
const EMAIL = { type: "email", normalize: true, max: 320 } as const;
const ROLE_NAME = { type: "string", pattern: /^[a-z][a-z0-9_-]{0,63}$/ } as const;
/** Up to 100 user ids (UUIDs), comma-separated: `users.names`. */
const UUID_TEXT = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const USER_IDS = new RegExp(`^${UUID_TEXT}(,${UUID_TEXT}){0,99}$`, "i");
/** An arbitrary constant: the advisory lock replicas take to create the first admin once. */
const FIRST_ADMIN_LOCK = 7_426_201;
/** Taken by every change to a user, so two changes cannot each leave the other as the last admin and both pass. */
const USER_CHANGE_LOCK = 7_426_202;
/** With a refresh token family's hash as second key: a family's spend, revocation and successor run one at a time. */
const REFRESH_FAMILY_LOCK = 7_426_203;
/** How long the JWKS answer is reused; a rotation on any replica clears it at once (`auth.keys.rotated`). */
const JWKS_CACHE_MS = 60_000;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const newSecret = () => randomBytes(32).toString("base64url");

function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    roles: row.roles,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function revocationOf(type: "user" | "client", row: UserRow | ClientRow): Revocation {
  return {
    subject: subjectOf(type, "id" in row ? row.id : row.client_id),
    minGeneration: row.token_generation,
    revokedAt: (row.tokens_revoked_at ?? new Date()).toISOString(),
  };
}

const sameRoles = (a: string[], b: string[]) => a.length === b.length && a.every((role) => b.includes(role));

/** The signing key's private half; `SigningKeyUnavailableError` when this node's AUTH_KEY_SECRET cannot open it. */
function openSigningKey(row: Pick<KeyRow, "kid" | "private_key">, secret: string) {
  try {
    return { kid: row.kid, privateKeyPem: decryptPrivateKey(row.private_key, secret) };
  } catch {
    throw new SigningKeyUnavailableError(row.kid);
  }
}

function toClient(row: ClientRow): OAuthClient {
  return {
    clientId: row.client_id,
    name: row.name,
    scopes: row.scopes,
    status: row.status,
    createdAt: row.created_at.toISOString(),
  };
}

interface AuthState {
  keySecret: string;
  /** The last JWKS answer, so `/.well-known/jwks.json` is not a database query per request. */
  jwksCache?: { keys: PublicJwk[]; at: number };
  /** Password hash compared against when an email is unknown, so a login takes as long either way. */
  decoyHash: string;
}

interface AuthMethods {
  signToken(claims: AccessClaims, transaction?: Transaction): Promise<string>;
  createSigningKey(options: { retireCurrent: boolean }): Promise<string>;
  issueTokens(user: UserRow, familyId?: string, transaction?: Transaction): Promise<TokenPair>;
  checkAccountInput(input: { email?: string; displayName?: string; password?: string }, passwordField?: string): void;
  broadcastRevocation(ctx: Context, revocation: Revocation | undefined): void;
  readinessChecks(): Promise<ReadinessCheck[]>;
  ensureSigningKey(): Promise<void>;
  ensureFirstAdmin(): Promise<void>;
  createUser(account: { email: string; password: string; displayName: string; roles: string[] }): Promise<User>;
  assertRolesExist(roles: string[]): Promise<void>;
}

type AuthThis = Service<DbSettings> & DbServiceThis & DbMethods & AuthState & AuthMethods;

const db = dbMixin({
  service: "auth",
  migrations: authMigrations,
});
/** The mixin's own checks, which this service's `readinessChecks` extends (a service's method replaces a mixin's). */
const databaseReadinessChecks = (db.methods as Pick<DbMethods, "readinessChecks">).readinessChecks;

const AuthService: ServiceSchema<DbSettings, DbMethods & AuthMethods, DbServiceThis & AuthState> = {
  name: "auth",
  mixins: [db],

  async started(this: AuthThis) {
    if (cfg.auth.keySecret) {
      this.keySecret = cfg.auth.keySecret;
    } else {
      // Production refuses to start without it (lib/config.ts); development keeps one under DATA_DIR.
      const secret = await developmentSecret(cfg.dataDir, "auth-key-secret");
      if (secret.generated) this.logger.warn("AUTH_KEY_SECRET is not set: generated a development one in DATA_DIR");
      this.keySecret = secret.value;
    }
    this.decoyHash = await hashPassword(newSecret(), cfg.auth.passwordHashCost);
    await this.ensureSigningKey();
    await this.ensureFirstAdmin();
    // The node starts (other services may be fine), but says at once why it cannot sign; readiness fails meanwhile.
    const signing = (await this.readinessChecks()).find((check) => check.name === "auth:signing-key");
    if (signing && !signing.ok) this.logger.error(`Not ready: ${signing.error}; logins will fail until it is fixed`);
  },

  events: {
    /** A replica rotated the signing key: the cached JWKS answer lacks the new key. */
    "auth.keys.rotated"(this: AuthThis) {
      this.jwksCache = undefined;
    },
  },

  actions: {
    /** Opens an account with role `customer`. Public, unless self-registration is switched off. */
    register: {
      audit: { entity: "user" },
      rest: "POST /register",
      status: 201,
      permissions: "public",
      params: {
        email: EMAIL,
        password: PASSWORD,
        displayName: { type: "string", trim: true, min: 1, max: 200 },
        $$strict: true,
      },
      async handler(
        this: AuthThis,
        ctx: Context<{ email: string; password: string; displayName: string }, GatewayMeta>,
      ): Promise<User> {
        if (!cfg.auth.selfRegistration)
          throw new ForbiddenError("Self-registration is closed", { reason: "REGISTRATION_CLOSED" });
        this.checkAccountInput(ctx.params);
        const user = await this.createUser({ ...ctx.params, roles: ["customer"] });
        return user;
      },
    },

    /**
     * Exchanges email and password for an access and a refresh token. Public; 401 for any wrong detail; 403
     * `PASSWORD_CHANGE_REQUIRED` (and no tokens) for a right password that must be changed first (`auth.changePassword`).
     */
    login: {
      audit: { entity: "session", idParam: "email" },
      rest: "POST /login",
      permissions: "public",
      params: { email: EMAIL, password: { type: "string", max: 128 }, $$strict: true },
      async handler(this: AuthThis, ctx: Context<{ email: string; password: string }>): Promise<TokenPair> {
        const [user] = await this.rows<UserRow>("SELECT * FROM users WHERE lower(email) = $1", [
          normalizeEmail(ctx.params.email),
        ]);
        const matches = await verifyPassword(ctx.params.password, user?.password_hash ?? this.decoyHash);
        if (!user || !matches || user.status !== "active") {
          throw new UnauthorizedError("Wrong email or password", "INVALID_CREDENTIALS");
        }
        if (user.must_change_password) throw new PasswordChangeRequiredError();
        return this.issueTokens(user);
      },
    },

    /**
     * Changes a user's password, proven by the current one; answers new tokens, so it also completes a sign-in whose
     * password had to be changed. Every other session of the user ends: its refresh tokens are revoked and its access
     * tokens refused by every gateway (`auth.tokens.revoked`). Public: the current password is the authority (and the
     * gateway applies the credential endpoints' rate limit).
     */
    changePassword: {
      audit: { entity: "session", idParam: "email" },
      rest: "POST /password",
      permissions: "public",
      params: {
        email: EMAIL,
        currentPassword: { type: "string", max: 128 },
        newPassword: PASSWORD,
        $$strict: true,
      },
      async handler(
        this: AuthThis,
        ctx: Context<{ email: string; currentPassword: string; newPassword: string }>,
      ): Promise<TokenPair> {
        const { currentPassword, newPassword } = ctx.params;
        const [user] = await this.rows<UserRow>("SELECT * FROM users WHERE lower(email) = $1", [
          normalizeEmail(ctx.params.email),
        ]);
        const matches = await verifyPassword(currentPassword, user?.password_hash ?? this.decoyHash);
        if (!user || !matches || user.status !== "active") {
          throw new UnauthorizedError("Wrong email or password", "INVALID_CREDENTIALS");
        }
        this.checkAccountInput({ password: newPassword }, "newPassword");
        if (newPassword.normalize("NFKC") === currentPassword.normalize("NFKC")) {
          throw invalidFields("The new password must differ from the current one", [
            {
              field: "newPassword",
              message: "'newPassword' must differ from 'currentPassword'",
              type: "passwordReused",
            },
          ]);
        }
        const passwordHash = await hashPassword(newPassword, cfg.auth.passwordHashCost);
        const { pair, revocation } = await this.sequelize.transaction(async (transaction) => {
          const [row] = await this.rows<UserRow>(
            `UPDATE users SET password_hash = $2, must_change_password = false, token_generation = token_generation + 1,
               tokens_revoked_at = now(), version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING *`,
            [user.id, passwordHash],
            { transaction },
          );
          await this.rows(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            [user.id],
            { transaction },
          );
          return { pair: await this.issueTokens(row, undefined, transaction), revocation: revocationOf("user", row) };
        });
        this.broadcastRevocation(ctx, revocation);
        return pair;
      },
    },

    /**
     * Exchanges a refresh token for new tokens; the presented one is spent. Presenting a spent token revokes its
     * whole family (a stolen token was used). Roles and status are read again, so changes apply here. Public.
     */
    refresh: {
      audit: { entity: "session" },
      rest: "POST /refresh",
      permissions: "public",
      params: { refreshToken: { type: "string", min: 1, max: 200 }, $$strict: true },
      async handler(this: AuthThis, ctx: Context<{ refreshToken: string }>): Promise<TokenPair> {
        const hash = sha256(ctx.params.refreshToken);
        // Spend, reuse revocation and the successor's insert run in one transaction under the family's lock. Without
        // it, a concurrent refresh with the same token could revoke the family between the winner's spend and its
        // successor's insert, and the successor would stay valid after a reuse was detected.
        const outcome = await this.sequelize.transaction(async (transaction) => {
          const [token] = await this.rows<{ family_id: string }>(
            "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
            [hash],
            { transaction },
          );
          if (!token) return { refused: "UNKNOWN" } as const;
          await this.rows("SELECT pg_advisory_xact_lock($1, hashtext($2))", [REFRESH_FAMILY_LOCK, token.family_id], {
            transaction,
          });
          const [spent] = await this.rows<{ user_id: string }>(
            `UPDATE refresh_tokens SET used_at = now()
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
             RETURNING user_id`,
            [hash],
            { transaction },
          );
          const revokeFamily = () =>
            this.rows(
              "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
              [token.family_id],
              { transaction },
            );
          if (!spent) {
            await revokeFamily();
            return { refused: "REUSED", familyId: token.family_id } as const;
          }
          const [user] = await this.rows<UserRow>("SELECT * FROM users WHERE id = $1", [spent.user_id], {
            transaction,
          });
          if (!user || user.status !== "active") {
            await revokeFamily();
            return { refused: "DISABLED" } as const;
          }
          return { pair: await this.issueTokens(user, token.family_id, transaction) } as const;
        });
        // Thrown after the commit: the revocation must stay.
        if (outcome.pair) return outcome.pair;
        if (outcome.refused === "REUSED") {
          this.logger.warn(`Refresh token reused: revoked token family ${outcome.familyId}`);
          throw new UnauthorizedError("Refresh token already used or revoked: the session is revoked", "TOKEN_REUSED");
        }
        if (outcome.refused === "DISABLED") throw new UnauthorizedError("The account is disabled", "INVALID_TOKEN");
        throw new UnauthorizedError("Unknown or expired refresh token", "INVALID_TOKEN");
      },
    },

    /** Ends the session of a refresh token (its whole family). Public: holding the token is the authority. */
    logout: {
      audit: { entity: "session" },
      rest: "POST /logout",
      status: 204,
      permissions: "public",
      params: { refreshToken: { type: "string", min: 1, max: 200 }, $$strict: true },
      async handler(this: AuthThis, ctx: Context<{ refreshToken: string }, GatewayMeta>): Promise<void> {
        await this.rows(
          `UPDATE refresh_tokens SET revoked_at = now()
           WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL`,
          [sha256(ctx.params.refreshToken)],
        );
      },
    },

    /** The calling user's account, with the permissions its roles grant now (what a client may offer it). */
    me: {
      rest: "GET /me",
      permissions: "authenticated",
      async handler(this: AuthThis, ctx: Context<unknown, CallerMeta>): Promise<User & { permissions: string[] }> {
        const caller = ctx.meta.caller;
        if (caller?.type !== "user") throw new ForbiddenError("Only users have an account", { caller: caller?.type });
        const [row] = await this.rows<UserRow>("SELECT * FROM users WHERE id = $1", [caller.id]);
        if (!row) throw new NotFoundError("User", caller.id);
        return { ...toUser(row), permissions: caller.permissions };
      },
    },

    /** The public keys that verify access tokens (JWKS), including retired keys whose tokens may still be valid. */
    jwks: {
      permissions: "public",
      async handler(this: AuthThis): Promise<{ keys: PublicJwk[] }> {
        if (this.jwksCache && Date.now() - this.jwksCache.at < JWKS_CACHE_MS) return { keys: this.jwksCache.keys };
        const rows = await this.rows<KeyRow>(
          `SELECT public_jwk FROM signing_keys
           WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
           ORDER BY created_at DESC`,
          [cfg.auth.accessTokenTtl + 60],
        );
        this.jwksCache = { keys: rows.map((row) => row.public_jwk), at: Date.now() };
        return { keys: this.jwksCache.keys };
      },
    },

    /**
     * The users and clients whose access tokens below a generation are refused, for as long as such tokens can be
     * valid; gateways load it at start and now and then, besides the `auth.tokens.revoked` events. Internal (system).
     */
    revocations: {
      async handler(this: AuthThis): Promise<Revocation[]> {
        const rows = await this.rows<{ type: "user" | "client"; id: string; generation: number; revokedAt: Date }>(
          `SELECT 'user' AS type, id::text AS id, token_generation AS generation, tokens_revoked_at AS "revokedAt"
             FROM users WHERE tokens_revoked_at > now() - make_interval(secs => $1)
           UNION ALL
           SELECT 'client', client_id, token_generation, tokens_revoked_at
             FROM oauth_clients WHERE tokens_revoked_at > now() - make_interval(secs => $1)`,
          [cfg.auth.accessTokenTtl + 60],
        );
        return rows.map((row) => ({
          subject: subjectOf(row.type, row.id),
          minGeneration: row.generation,
          revokedAt: row.revokedAt.toISOString(),
        }));
      },
    },

    /** Role → permissions, for resolving a caller's permissions. Internal (system only). */
    rolePermissions: {
      async handler(this: AuthThis): Promise<Record<string, string[]>> {
        const rows = await this.rows<Role>("SELECT name, permissions FROM roles");
        return Object.fromEntries(rows.map((row) => [row.name, row.permissions]));
      },
    },

    /** Users, oldest first, a page at a time. `users:admin`. */
    "users.list": {
      rest: "GET /users",
      list: "page",
      permissions: ["users:admin"],
      params: { ...pageParams(100, 50), $$strict: true },
      async handler(this: AuthThis, ctx: Context<PageQuery>): Promise<Page<User>> {
        const query = { table: "users", where: "true", order: "created_at, id", bind: [] };
        return selectPage(this.rows, query, ctx.params.page, ctx.params.pageSize, toUser);
      },
    },

    /**
     * The display names of users by id (`ids`, comma-separated, at most 100), so the console shows who did something
     * instead of an id: for everyone who reads records naming users (audit, dead letters, sagas, alerts). Unknown ids
     * are left out. Nothing else of the accounts is shown.
     */
    "users.names": {
      rest: "GET /users/names",
      permissions: ["users:admin", "audit:read", "dlq:read", "sagas:read", "alerts:read"],
      params: {
        ids: {
          type: "string",
          pattern: USER_IDS,
          messages: { stringPattern: "ids are up to 100 user ids, separated by commas" },
        },
        $$strict: true,
      },
      async handler(this: AuthThis, ctx: Context<{ ids: string }>): Promise<Record<string, string>> {
        const ids = ctx.params.ids.toLowerCase().split(",");
        const rows = await this.rows<{ id: string; display_name: string }>(
          "SELECT id, display_name FROM users WHERE id = ANY($1::uuid[])",
          [ids],
        );
        return Object.fromEntries(rows.map((row) => [row.id, row.display_name]));
      },
    },

    /** Opens an account for someone else, with the roles the admin chooses (registration may be closed). `users:admin`. */
    "users.create": {
      audit: { entity: "user" },
      rest: "POST /users",
      status: 201,
      permissions: ["users:admin"],
      params: {
        email: EMAIL,
        password: PASSWORD,
        displayName: { type: "string", trim: true, min: 1, max: 200 },
        roles: {
          type: "array",
          items: ROLE_NAME,
          unique: true,
          min: 1,
          default: ["customer"],
        },
        $$strict: true,
      },
      async handler(
        this: AuthThis,
        ctx: Context<{ email: string; password: string; displayName: string; roles: string[] }, GatewayMeta>,
      ): Promise<User> {
        this.checkAccountInput(ctx.params);
        await this.assertRolesExist(ctx.params.roles);
        const user = await this.createUser(ctx.params);
        return user;
      },
    },

    /**
     * One user. Admins (`users:admin`) may read anyone; holders of `users:read:own` only themselves, and anyone
     * else's id is answered as not found, so ids of other accounts cannot be probed.
     */
    "users.get": {
      rest: "GET /users/:id",
      permissions: ["users:admin", "users:read:own"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: AuthThis, ctx: Context<{ id: string }, CallerMeta>): Promise<User> {
        const owner = ownerScope(ctx.meta.caller, "users:admin");
        if (owner !== undefined && owner !== ctx.params.id) throw new NotFoundError("User", ctx.params.id);
        const [row] = await this.rows<UserRow>("SELECT * FROM users WHERE id = $1", [ctx.params.id]);
        if (!row) throw new NotFoundError("User", ctx.params.id);
        return toUser(row);
      },
    },

    /**
     * Changes a user's roles, status or name. A change of roles or status ends the user's access tokens on every
     * gateway within seconds (`auth.tokens.revoked`); the user's next refresh gets the new roles, a disabled user's
     * refresh tokens are revoked. 409 `LAST_ADMIN` for a change that would leave no active admin. `users:admin`.
     */
    "users.update": {
      audit: { entity: "user" },
      rest: "PATCH /users/:id",
      permissions: ["users:admin"],
      params: {
        id: { type: "uuid" },
        roles: {
          type: "array",
          items: ROLE_NAME,
          unique: true,
          optional: true,
        },
        status: { type: "enum", values: ["active", "disabled"], optional: true },
        displayName: { type: "string", trim: true, min: 1, max: 200, optional: true },
        $$strict: true,
      },
      async handler(
        this: AuthThis,
        ctx: Context<{ id: string; roles?: string[]; status?: UserStatus; displayName?: string }>,
      ): Promise<User> {
        const { id, roles, status } = ctx.params;
        const displayName = ctx.params.displayName === undefined ? null : normalizeDisplayName(ctx.params.displayName);
        if (displayName !== null) this.checkAccountInput({ displayName });
        if (roles) await this.assertRolesExist(roles);
        const { row, revocation } = await this.sequelize.transaction(async (transaction) => {
          await this.rows("SELECT pg_advisory_xact_lock($1)", [USER_CHANGE_LOCK], { transaction });
          const [current] = await this.rows<UserRow>("SELECT * FROM users WHERE id = $1", [id], { transaction });
          if (!current) throw new NotFoundError("User", id);
          const isAdmin = (user: { roles: string[]; status: UserStatus }) =>
            user.status === "active" && user.roles.includes("admin");
          if (isAdmin(current) && !isAdmin({ roles: roles ?? current.roles, status: status ?? current.status })) {
            const [other] = await this.rows(
              "SELECT 1 FROM users WHERE id <> $1 AND status = 'active' AND 'admin' = ANY(roles) LIMIT 1",
              [id],
              { transaction },
            );
            if (!other) {
              throw new ConflictError("This change would leave no active admin", "LAST_ADMIN", { id });
            }
          }
          const revokes =
            (roles !== undefined && !sameRoles(roles, current.roles)) ||
            (status !== undefined && status !== current.status);
          const [updated] = await this.rows<UserRow>(
            `UPDATE users SET roles = COALESCE($2, roles), status = COALESCE($3, status),
               display_name = COALESCE($4, display_name), version = version + 1, updated_at = now(),
               token_generation = token_generation + $5::int,
               tokens_revoked_at = CASE WHEN $5::int > 0 THEN now() ELSE tokens_revoked_at END
             WHERE id = $1 RETURNING *`,
            [id, roles ?? null, status ?? null, displayName, revokes ? 1 : 0],
            { transaction },
          );
          if (status === "disabled") {
            await this.rows(
              "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
              [id],
              { transaction },
            );
          }
          return { row: updated, revocation: revokes ? revocationOf("user", updated) : undefined };
        });
        this.broadcastRevocation(ctx, revocation);
        return toUser(row);
      },
    },

    /** Roles and their permissions (a few: all of them unless paged). `users:admin`. */
    "roles.list": {
      rest: "GET /roles",
      list: "page",
      permissions: ["users:admin"],
      params: { ...pageParams(100), $$strict: true },
      async handler(this: AuthThis, ctx: Context<PageQuery>): Promise<Page<Role>> {
        const roles = await this.rows<Role>(
          `SELECT name, description, permissions, built_in AS "builtIn" FROM roles ORDER BY name`,
        );
        return pageOf(roles, ctx.params);
      },
    },

    /** Creates or replaces a role's permissions; gateways pick the change up at once. `users:admin`. */
    "roles.put": {
      audit: { entity: "role", idParam: "name" },
      rest: "PUT /roles/:name",
      permissions: ["users:admin"],
      params: {
        name: ROLE_NAME,
        description: { type: "string", max: 500, default: "" },
        permissions: { type: "array", items: { type: "string", pattern: /^(\*|[a-z]+(:[a-z*]+)*)$/ }, unique: true },
        $$strict: true,
      },
      async handler(
        this: AuthThis,
        ctx: Context<{ name: string; description: string; permissions: string[] }>,
      ): Promise<Role> {
        const { name, description, permissions } = ctx.params;
        const [role] = await this.rows<Role>(
          `INSERT INTO roles (name, description, permissions) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET description = $2, permissions = $3, updated_at = now()
           RETURNING name, description, permissions, built_in AS "builtIn"`,
          [name, description, permissions],
        );
        ctx.broadcast("auth.roles.changed", { name });
        return role;
      },
    },

    /**
     * Starts signing with a new key; the old one keeps verifying until its tokens have expired. Emits
     * `auth.keys.rotated` so gateways reload the JWKS at once. `users:admin`.
     */
    "keys.rotate": {
      audit: { entity: "signingKey" },
      rest: "POST /keys/rotate",
      permissions: ["users:admin"],
      async handler(this: AuthThis, ctx: Context): Promise<{ kid: string }> {
        const kid = await this.createSigningKey({ retireCurrent: true });
        ctx.broadcast("auth.keys.rotated", { kid });
        return { kid };
      },
    },

    /** Registers a machine client; its secret is shown once, here. `users:admin`. */
    "clients.create": {
      audit: { entity: "client", idParam: "clientId" },
      rest: "POST /clients",
      status: 201,
      permissions: ["users:admin"],
      params: {
        name: { type: "string", trim: true, min: 1, max: 200 },
        scopes: { type: "array", items: { type: "string", pattern: /^[a-z]+(:[a-z*]+)*$/ }, unique: true },
        $$strict: true,
      },
      async handler(
        this: AuthThis,
        ctx: Context<{ name: string; scopes: string[] }, GatewayMeta>,
      ): Promise<OAuthClient & { clientSecret: string }> {
        const clientSecret = newSecret();
        const [row] = await this.rows<ClientRow>(
          `INSERT INTO oauth_clients (client_id, name, secret_hash, scopes) VALUES ($1, $2, $3, $4) RETURNING *`,
          [`client_${randomBytes(12).toString("hex")}`, ctx.params.name, sha256(clientSecret), ctx.params.scopes],
        );
        return { ...toClient(row), clientSecret };
      },
    },

    /** Machine clients, without secrets, oldest first, a page at a time. `users:admin`. */
    "clients.list": {
      rest: "GET /clients",
      list: "page",
      permissions: ["users:admin"],
      params: { ...pageParams(100, 50), $$strict: true },
      async handler(this: AuthThis, ctx: Context<PageQuery>): Promise<Page<OAuthClient>> {
        const query = { table: "oauth_clients", where: "true", order: "created_at, client_id", bind: [] };
        return selectPage(this.rows, query, ctx.params.page, ctx.params.pageSize, toClient);
      },
    },

    /**
     * Replaces a client's secret (the old one stops working at once, and so do the access tokens it got:
     * `auth.tokens.revoked`); the new one is shown once. `users:admin`.
     */
    "clients.rotateSecret": {
      audit: { entity: "client", idParam: "clientId" },
      rest: "POST /clients/:clientId/rotate-secret",
      permissions: ["users:admin"],
      params: { clientId: { type: "string", max: 64 }, $$strict: true },
      async handler(
        this: AuthThis,
        ctx: Context<{ clientId: string }>,
      ): Promise<OAuthClient & { clientSecret: string }> {
        const clientSecret = newSecret();
        const [row] = await this.rows<ClientRow>(
          `UPDATE oauth_clients SET secret_hash = $2, updated_at = now(), token_generation = token_generation + 1,
             tokens_revoked_at = now()
           WHERE client_id = $1 RETURNING *`,
          [ctx.params.clientId, sha256(clientSecret)],
        );
        if (!row) throw new NotFoundError("Client", ctx.params.clientId);
        this.broadcastRevocation(ctx, revocationOf("client", row));
        return { ...toClient(row), clientSecret };
      },
    },

    /**
     * Enables or disables a client; a disabled client gets no new tokens, and the ones it has are refused by every
     * gateway within seconds (`auth.tokens.revoked`). `users:admin`.
     */
    "clients.update": {
      audit: { entity: "client", idParam: "clientId" },
      rest: "PATCH /clients/:clientId",
      permissions: ["users:admin"],
      params: {
        clientId: { type: "string", max: 64 },
        status: { type: "enum", values: ["active", "disabled"] },
        $$strict: true,
      },
      async handler(this: AuthThis, ctx: Context<{ clientId: string; status: UserStatus }>): Promise<OAuthClient> {
        const revokes = ctx.params.status === "disabled" ? 1 : 0;
        const [row] = await this.rows<ClientRow>(
          `UPDATE oauth_clients SET status = $2, updated_at = now(), token_generation = token_generation + $3::int,
             tokens_revoked_at = CASE WHEN $3::int > 0 THEN now() ELSE tokens_revoked_at END
           WHERE client_id = $1 RETURNING *`,
          [ctx.params.clientId, ctx.params.status, revokes],
        );
        if (!row) throw new NotFoundError("Client", ctx.params.clientId);
        if (revokes) this.broadcastRevocation(ctx, revocationOf("client", row));
        return toClient(row);
      },
    },

    /**
     * OAuth2 token endpoint, client credentials grant only (RFC 6749 §4.4). Credentials come from HTTP Basic (the
     * gateway passes them in `meta.basicAuth`) or the form. Errors carry RFC 6749 codes as their `type`. Public.
     */
    oauthToken: {
      permissions: "public",
      params: {
        grant_type: { type: "string", max: 100, optional: true },
        client_id: { type: "string", max: 100, optional: true },
        client_secret: { type: "string", max: 200, optional: true },
        scope: { type: "string", max: 1000, optional: true },
      },
      async handler(
        this: AuthThis,
        ctx: Context<
          {
            grant_type?: string;
            client_id?: string;
            client_secret?: string;
            scope?: string;
          },
          OAuthMeta
        >,
      ) {
        const { grant_type: grantType, scope } = ctx.params;
        const basicAuth = ctx.meta.basicAuth;
        if (!grantType) throw new OAuthError("invalid_request", "grant_type is required");
        if (grantType !== "client_credentials") {
          throw new OAuthError("unsupported_grant_type", `grant_type ${grantType} is not supported`);
        }
        if (basicAuth && (ctx.params.client_id || ctx.params.client_secret)) {
          throw new OAuthError("invalid_request", "use one client authentication method, not two");
        }
        const clientId = basicAuth?.id ?? ctx.params.client_id;
        const secret = basicAuth?.secret ?? ctx.params.client_secret;
        if (!clientId || !secret) throw new OAuthError("invalid_client", "client authentication failed");
        const [client] = await this.rows<ClientRow>("SELECT * FROM oauth_clients WHERE client_id = $1", [clientId]);
        const secretHash = sha256(secret);
        if (!client || client.status !== "active" || client.secret_hash !== secretHash) {
          throw new OAuthError("invalid_client", "client authentication failed");
        }
        const requested = scope ? scope.split(" ").filter(Boolean) : client.scopes;
        const refused = requested.filter((item) => !client.scopes.includes(item));
        if (refused.length > 0)
          throw new OAuthError("invalid_scope", `scope not granted to this client: ${refused.join(" ")}`);
        const grantedScope = requested.join(" ");
        return {
          access_token: await this.signToken({
            sub: client.client_id,
            typ: "client",
            scope: grantedScope,
            gen: client.token_generation,
          }),
          token_type: "Bearer",
          expires_in: cfg.auth.accessTokenTtl,
          scope: grantedScope,
        };
      },
    },
  },

  methods: {
    /** 422 naming every field that breaks the account rules (lib/account-input.ts). */
    checkAccountInput(this: AuthThis, { email, displayName, password }, passwordField = "password"): void {
      const problems = [
        email === undefined ? undefined : emailProblem("email", normalizeEmail(email)),
        displayName === undefined ? undefined : displayNameProblem("displayName", normalizeDisplayName(displayName)),
        password === undefined ? undefined : passwordProblem(passwordField, password),
      ].filter((problem): problem is FieldProblem => problem !== undefined);
      if (problems.length > 0) throw invalidFields("Parameters validation error!", problems);
    },

    /** Tells every gateway (after the change has committed) to refuse the subject's older access tokens. */
    broadcastRevocation(this: AuthThis, ctx: Context, revocation: Revocation | undefined): void {
      if (revocation) ctx.broadcast("auth.tokens.revoked", revocation);
    },

    /**
     * The database, and whether this node can sign: a node whose AUTH_KEY_SECRET does not open the current signing
     * key (a changed or mistyped secret, or a database first used with another one) would answer every login 500.
     */
    async readinessChecks(this: AuthThis): Promise<ReadinessCheck[]> {
      const signing = timedCheck("auth:signing-key", async () => {
        const rows = await this.rows<KeyRow>(
          "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
        ).catch(() => undefined);
        // An unreachable database is database:auth's failure; this check reports only what it can tell.
        if (!rows) return;
        if (!rows[0]) throw new Error("no active signing key");
        openSigningKey(rows[0], this.keySecret);
      });
      const checks = await Promise.all([databaseReadinessChecks.call(this), signing]);
      return checks.flat();
    },

    /**
     * Opens an account (self-registered or by an admin), e-mail and name in their normal forms; 409 `DUPLICATE` when
     * the email has one.
     */
    async createUser(this: AuthThis, { email, password, displayName, roles }): Promise<User> {
      const passwordHash = await hashPassword(password, cfg.auth.passwordHashCost);
      try {
        const [row] = await this.rows<UserRow>(
          `INSERT INTO users (id, email, display_name, password_hash, roles) VALUES ($1, $2, $3, $4, $5)
           RETURNING *`,
          [randomUUID(), normalizeEmail(email), normalizeDisplayName(displayName), passwordHash, roles],
        );
        return toUser(row);
      } catch (err) {
        if (err instanceof UniqueConstraintError) {
          throw new ConflictError("An account with this email exists", "DUPLICATE", { field: "email" });
        }
        throw err;
      }
    },

    /** 404 naming the roles that do not exist, before a user is given them. */
    async assertRolesExist(this: AuthThis, roles: string[]): Promise<void> {
      const known = await this.rows<{ name: string }>("SELECT name FROM roles WHERE name = ANY($1)", [roles]);
      const unknown = roles.filter((role) => !known.some((row) => row.name === role));
      if (unknown.length > 0) throw new NotFoundError("Role", unknown.join(", "));
    },

    /** An access token signed with the newest key that is not retired (read each time: another replica may rotate). */
    async signToken(this: AuthThis, claims: AccessClaims, transaction?: Transaction): Promise<string> {
      const [row] = await this.rows<KeyRow>(
        "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
        [],
        { transaction },
      );
      if (!row) throw new Error("No active signing key");
      let key;
      try {
        key = openSigningKey(row, this.keySecret);
      } catch (err) {
        this.logger.error(`${(err as Error).message}: this node cannot sign tokens until AUTH_KEY_SECRET is corrected`);
        throw err;
      }
      return signAccessToken(claims, key, {
        issuer: cfg.auth.issuer,
        audience: cfg.auth.audience,
        ttlSeconds: cfg.auth.accessTokenTtl,
      });
    },

    /** Stores a new key pair, its private key encrypted; optionally retires the current key in the same statement. */
    async createSigningKey(this: AuthThis, { retireCurrent }: { retireCurrent: boolean }): Promise<string> {
      const key = generateSigningKey();
      this.jwksCache = undefined;
      const retire = retireCurrent
        ? "WITH retired AS (UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL) "
        : "";
      await this.rows(
        `${retire}INSERT INTO signing_keys (kid, algorithm, private_key, public_jwk) VALUES ($1, $2, $3, $4)`,
        [key.kid, ALGORITHM, encryptPrivateKey(key.privateKeyPem, this.keySecret), JSON.stringify(key.publicJwk)],
      );
      return key.kid;
    },

    async issueTokens(
      this: AuthThis,
      user: UserRow,
      familyId = randomUUID(),
      transaction?: Transaction,
    ): Promise<TokenPair> {
      const accessToken = await this.signToken(
        { sub: user.id, typ: "user", roles: user.roles, gen: user.token_generation },
        transaction,
      );
      const refreshToken = newSecret();
      await this.rows(
        `INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))`,
        [randomUUID(), familyId, user.id, sha256(refreshToken), cfg.auth.refreshTokenTtl],
        { transaction },
      );
      return { accessToken, refreshToken, tokenType: "Bearer", expiresIn: cfg.auth.accessTokenTtl };
    },

    async ensureSigningKey(this: AuthThis) {
      const [active] = await this.rows<KeyRow>("SELECT kid FROM signing_keys WHERE retired_at IS NULL LIMIT 1");
      if (active) return;
      this.logger.info(`Created signing key ${await this.createSigningKey({ retireCurrent: false })}`);
    },

    /**
     * The first admin, from ADMIN_EMAIL / ADMIN_PASSWORD; never a fixed default password. Under a lock, so replicas
     * that start together create one. An existing account with that email is not promoted: its password is someone
     * else's choice, so the node refuses to start and says why. A generated password (development, no ADMIN_PASSWORD)
     * is written to the terminal once, never through the logger (whose records reach the log store, readable by
     * operators), and must be changed at the first sign-in.
     */
    async ensureFirstAdmin(this: AuthThis) {
      let password = cfg.auth.adminPassword;
      const email = cfg.auth.adminEmail ?? DEFAULT_ADMIN_EMAIL;
      const created = await this.sequelize.transaction(async (transaction) => {
        await this.rows("SELECT pg_advisory_xact_lock($1)", [FIRST_ADMIN_LOCK], { transaction });
        const [admin] = await this.rows("SELECT 1 FROM users WHERE 'admin' = ANY(roles) LIMIT 1", [], { transaction });
        if (admin) return false;
        if (!password) {
          if (cfg.isProduction)
            throw new Error("No admin exists: set ADMIN_PASSWORD (and ADMIN_EMAIL) for the first start");
          password = randomBytes(15).toString("base64url");
        }
        const [taken] = await this.rows("SELECT 1 FROM users WHERE lower(email) = lower($1)", [email], { transaction });
        if (taken) {
          throw new Error(
            `No admin exists, and ADMIN_EMAIL ${email} belongs to an account that is not one: ` +
              "set another ADMIN_EMAIL for the first admin",
          );
        }
        await this.rows(
          `INSERT INTO users (id, email, display_name, password_hash, roles, must_change_password)
           VALUES ($1, $2, 'Administrator', $3, '{admin}', $4)`,
          [
            randomUUID(),
            normalizeEmail(email),
            await hashPassword(password, cfg.auth.passwordHashCost),
            !cfg.auth.adminPassword,
          ],
          { transaction },
        );
        return true;
      });
      if (!created) return;
      if (cfg.auth.adminPassword) {
        this.logger.info(`Created the first admin ${email}`);
        return;
      }
      process.stdout.write(
        `\nFirst admin: ${email}\nGenerated password (shown once, change it at the first sign-in): ${password}\n\n`,
      );
      this.logger.warn(
        `Created the first admin ${email} with a generated password, written to this node's terminal only; ` +
          "it must be changed at the first sign-in",
      );
    },
  },
};

export default AuthService;
