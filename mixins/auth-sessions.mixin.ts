/**
 * The auth service's sessions: sign-in by email and password, the password change, and refresh tokens, rotated at
 * each use with reuse detection (a spent token presented again revokes its whole family), and logout.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import { checkAccountInput, EMAIL, normalizeEmail, PASSWORD } from "../lib/account-input";
import { revocationOf, type UserRow } from "../lib/auth-rows";
import { newSecret, sha256 } from "../lib/auth-secrets";
import { PasswordChangeRequiredError, UnauthorizedError, invalidFields } from "../lib/errors";
import type { GatewayMeta } from "../lib/gateway-meta";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { hashPassword, verifyPassword } from "../lib/passwords";
import type { TokenPair } from "../contracts/auth";
import type { AuthKeyMethods } from "./auth-keys.mixin";
import type { AuthRevocationMethods } from "./auth-revocations.mixin";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** With a refresh token family's hash as second key: a family's spend, revocation and successor run one at a time. */
const REFRESH_FAMILY_LOCK = 7_426_203;

export interface AuthSessionMethods {
  issueTokens(user: UserRow, familyId?: string, transaction?: Transaction): Promise<TokenPair>;
}

export interface AuthSessionState {
  /** Password hash compared against when an email is unknown, so a login takes as long either way. */
  decoyHash: string;
}

/** Its own methods, and those of the mixins it signs (auth-keys) and revokes (auth-revocations) with. */
type SessionMethods = AuthSessionMethods & Pick<AuthKeyMethods, "signToken"> & AuthRevocationMethods;
type SessionsThis = Service<DbSettings> & DbServiceThis & DbMethods & AuthSessionState & SessionMethods;

const loginParams = paramsSchema({ email: EMAIL, password: { type: "string", max: 128 }, $$strict: true });
const changePasswordParams = paramsSchema({
  email: EMAIL,
  currentPassword: { type: "string", max: 128 },
  newPassword: PASSWORD,
  $$strict: true,
});
const refreshTokenParams = paramsSchema({ refreshToken: { type: "string", min: 1, max: 200 }, $$strict: true });

export function authSessionsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & SessionMethods, DbServiceThis & AuthSessionState>> = {
    actions: {
      /**
       * Exchanges email and password for an access and a refresh token. Public; 401 for any wrong detail; 403
       * `PASSWORD_CHANGE_REQUIRED` (and no tokens) for a right password that must be changed first (`auth.changePassword`).
       */
      login: {
        audit: { entity: "session", idParam: "email" },
        rest: "POST /login",
        permissions: "public",
        params: loginParams,
        async handler(this: SessionsThis, ctx: Context<ParamsOf<typeof loginParams>>): Promise<TokenPair> {
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
        params: changePasswordParams,
        async handler(this: SessionsThis, ctx: Context<ParamsOf<typeof changePasswordParams>>): Promise<TokenPair> {
          const { currentPassword, newPassword } = ctx.params;
          const [user] = await this.rows<UserRow>("SELECT * FROM users WHERE lower(email) = $1", [
            normalizeEmail(ctx.params.email),
          ]);
          const matches = await verifyPassword(currentPassword, user?.password_hash ?? this.decoyHash);
          if (!user || !matches || user.status !== "active") {
            throw new UnauthorizedError("Wrong email or password", "INVALID_CREDENTIALS");
          }
          checkAccountInput({ password: newPassword }, "newPassword");
          if (newPassword.normalize("NFKC") === currentPassword.normalize("NFKC")) {
            throw invalidFields("The new password must differ from the current one", [
              {
                field: "newPassword",
                message: "'newPassword' must differ from 'currentPassword'",
                type: "passwordReused",
              },
            ]);
          }
          const passwordHash = await hashPassword(newPassword, this.settings.config.auth.passwordHashCost);
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
        params: refreshTokenParams,
        async handler(this: SessionsThis, ctx: Context<ParamsOf<typeof refreshTokenParams>>): Promise<TokenPair> {
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
            throw new UnauthorizedError(
              "Refresh token already used or revoked: the session is revoked",
              "TOKEN_REUSED",
            );
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
        params: refreshTokenParams,
        async handler(
          this: SessionsThis,
          ctx: Context<ParamsOf<typeof refreshTokenParams>, GatewayMeta>,
        ): Promise<void> {
          await this.rows(
            `UPDATE refresh_tokens SET revoked_at = now()
             WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL`,
            [sha256(ctx.params.refreshToken)],
          );
        },
      },
    },

    methods: {
      async issueTokens(
        this: SessionsThis,
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
          [randomUUID(), familyId, user.id, sha256(refreshToken), this.settings.config.auth.refreshTokenTtl],
          { transaction },
        );
        return { accessToken, refreshToken, tokenType: "Bearer", expiresIn: this.settings.config.auth.accessTokenTtl };
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
