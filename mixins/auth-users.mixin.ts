/**
 * The auth service's user accounts: self-registration, the caller's own account, and their administration (list,
 * names, create, get, update). A change of roles or status ends the user's access tokens (auth-revocations).
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import { UniqueConstraintError } from "sequelize";
import {
  checkAccountInput,
  EMAIL,
  normalizeDisplayName,
  normalizeEmail,
  PASSWORD,
  ROLE_NAME,
} from "../lib/account-input";
import { revocationOf, toUser, type UserRow } from "../lib/auth-rows";
import { ConflictError, ForbiddenError, NotFoundError } from "../lib/errors";
import { selectPage } from "../lib/database";
import type { GatewayMeta } from "../lib/gateway-meta";
import { pageParams, type Page } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { hashPassword } from "../lib/passwords";
import { ownerScope } from "../lib/permissions";
import type { CallerMeta } from "../contracts/caller";
import type { User, UserStatus } from "../contracts/auth";
import type { AuthRevocationMethods } from "./auth-revocations.mixin";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** Up to 100 user ids (UUIDs), comma-separated: `users.names`. */
const UUID_TEXT = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const USER_IDS = new RegExp(`^${UUID_TEXT}(,${UUID_TEXT}){0,99}$`, "i");
/** Taken by every change to a user, so two changes cannot each leave the other as the last admin and both pass. */
const USER_CHANGE_LOCK = 7_426_202;

const sameRoles = (a: string[], b: string[]) => a.length === b.length && a.every((role) => b.includes(role));

const registerParams = paramsSchema({
  email: EMAIL,
  password: PASSWORD,
  displayName: { type: "string", trim: true, min: 1, max: 200 },
  $$strict: true,
});
const listUsersParams = paramsSchema({ ...pageParams(100, 50), $$strict: true });
const userNamesParams = paramsSchema({
  ids: {
    type: "string",
    pattern: USER_IDS,
    messages: { stringPattern: "ids are up to 100 user ids, separated by commas" },
  },
  $$strict: true,
});
const createUserParams = paramsSchema({
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
});
const userIdParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });
const updateUserParams = paramsSchema({
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
});

interface NewAccount {
  email: string;
  password: string;
  displayName: string;
  roles: string[];
}

export interface AuthUserMethods {
  createUser(account: NewAccount): Promise<User>;
  assertRolesExist(roles: string[]): Promise<void>;
}

/** Its own methods, and the revocation broadcast of auth-revocations. */
type UserMethods = AuthUserMethods & AuthRevocationMethods;
type UsersThis = Service<DbSettings> & DbServiceThis & DbMethods & UserMethods;

export function authUsersMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & UserMethods, DbServiceThis>> = {
    actions: {
      /** Opens an account with role `customer`. Public, unless self-registration is switched off. */
      register: {
        audit: { entity: "user" },
        rest: "POST /register",
        status: 201,
        permissions: "public",
        params: registerParams,
        async handler(this: UsersThis, ctx: Context<ParamsOf<typeof registerParams>, GatewayMeta>): Promise<User> {
          if (!this.settings.config.auth.selfRegistration)
            throw new ForbiddenError("Self-registration is closed", { reason: "REGISTRATION_CLOSED" });
          checkAccountInput(ctx.params);
          const user = await this.createUser({ ...ctx.params, roles: ["customer"] });
          return user;
        },
      },

      /** The calling user's account, with the permissions its roles grant now (what a client may offer it). */
      me: {
        rest: "GET /me",
        permissions: "authenticated",
        async handler(this: UsersThis, ctx: Context<unknown, CallerMeta>): Promise<User & { permissions: string[] }> {
          const caller = ctx.meta.caller;
          if (caller?.type !== "user") throw new ForbiddenError("Only users have an account", { caller: caller?.type });
          const [row] = await this.rows<UserRow>("SELECT * FROM users WHERE id = $1", [caller.id]);
          if (!row) throw new NotFoundError("User", caller.id);
          return { ...toUser(row), permissions: caller.permissions };
        },
      },

      /** Users, oldest first, a page at a time. `users:admin`. */
      "users.list": {
        rest: "GET /users",
        list: "page",
        permissions: ["users:admin"],
        params: listUsersParams,
        async handler(this: UsersThis, ctx: Context<ParamsOf<typeof listUsersParams>>): Promise<Page<User>> {
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
        params: userNamesParams,
        async handler(
          this: UsersThis,
          ctx: Context<ParamsOf<typeof userNamesParams>>,
        ): Promise<Record<string, string>> {
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
        params: createUserParams,
        async handler(this: UsersThis, ctx: Context<ParamsOf<typeof createUserParams>, GatewayMeta>): Promise<User> {
          checkAccountInput(ctx.params);
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
        params: userIdParams,
        async handler(this: UsersThis, ctx: Context<ParamsOf<typeof userIdParams>, CallerMeta>): Promise<User> {
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
        params: updateUserParams,
        async handler(this: UsersThis, ctx: Context<ParamsOf<typeof updateUserParams>>): Promise<User> {
          const { id, roles, status } = ctx.params;
          const displayName =
            ctx.params.displayName === undefined ? null : normalizeDisplayName(ctx.params.displayName);
          if (displayName !== null) checkAccountInput({ displayName });
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
    },

    methods: {
      /**
       * Opens an account (self-registered or by an admin), e-mail and name in their normal forms; 409 `DUPLICATE` when
       * the email has one.
       */
      async createUser(this: UsersThis, { email, password, displayName, roles }: NewAccount): Promise<User> {
        const passwordHash = await hashPassword(password, this.settings.config.auth.passwordHashCost);
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
      async assertRolesExist(this: UsersThis, roles: string[]): Promise<void> {
        const known = await this.rows<{ name: string }>("SELECT name FROM roles WHERE name = ANY($1)", [roles]);
        const unknown = roles.filter((role) => !known.some((row) => row.name === role));
        if (unknown.length > 0) throw new NotFoundError("Role", unknown.join(", "));
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
