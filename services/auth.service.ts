/**
 * auth: users and their passwords, roles and their permissions, access tokens (ES256 JWTs) with rotating signing
 * keys published as a JWKS, refresh tokens with rotation and reuse detection, and OAuth2 clients (client
 * credentials grant). Its own PostgreSQL database. Its mixins hold the features: user accounts (auth-users), roles
 * (auth-roles), sign-in, password change and refresh tokens (auth-sessions), the revocation of access tokens
 * (auth-revocations), signing keys and the JWKS (auth-keys), OAuth2 clients and the token endpoint (auth-clients) and
 * the first admin (auth-first-admin); this file starts the service and says whether it is ready.
 */
import type { Service, ServiceSchema } from "moleculer";
import type { KeyRow } from "../lib/auth-rows";
import { newSecret, openSigningKey } from "../lib/auth-secrets";
import { timedCheck } from "../lib/health";
import type { ReadinessCheck } from "../contracts/health";
import { hashPassword } from "../lib/passwords";
import { developmentSecret } from "../lib/secrets";
import authMigrations from "../migrations/auth";
import { authClientsMixin } from "../mixins/auth-clients.mixin";
import { authFirstAdminMixin, type AuthFirstAdminMethods } from "../mixins/auth-first-admin.mixin";
import { authKeysMixin, type AuthKeyMethods, type AuthKeyState } from "../mixins/auth-keys.mixin";
import { authRevocationsMixin } from "../mixins/auth-revocations.mixin";
import { authRolesMixin } from "../mixins/auth-roles.mixin";
import { authSessionsMixin, type AuthSessionState } from "../mixins/auth-sessions.mixin";
import { authUsersMixin } from "../mixins/auth-users.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";

/** The state `started` sets for the mixins (auth-keys, auth-sessions). */
type AuthState = AuthKeyState & AuthSessionState;

/** What `started` runs from the mixins (auth-keys, auth-first-admin). */
type AuthMethods = Pick<AuthKeyMethods, "ensureSigningKey"> & AuthFirstAdminMethods;

type AuthThis = Service<DbSettings> & DbServiceThis & DbMethods & AuthState & AuthMethods;

const db = dbMixin({
  service: "auth",
  migrations: authMigrations,
});
/** The mixin's own checks, which this service's `readinessChecks` extends (a service's method replaces a mixin's). */
const databaseReadinessChecks = (db.methods as Pick<DbMethods, "readinessChecks">).readinessChecks;

const AuthService: ServiceSchema<DbSettings, DbMethods & AuthMethods, DbServiceThis & AuthState> = {
  name: "auth",
  mixins: [
    db,
    authUsersMixin(),
    authRolesMixin(),
    authSessionsMixin(),
    authRevocationsMixin(),
    authKeysMixin(),
    authClientsMixin(),
    authFirstAdminMixin(),
  ],

  async started(this: AuthThis) {
    if (this.settings.config.auth.keySecret) {
      this.keySecret = this.settings.config.auth.keySecret;
    } else {
      // Production refuses to start without it (lib/config.ts); development keeps one under DATA_DIR.
      const secret = await developmentSecret(this.settings.config.dataDir, "auth-key-secret");
      if (secret.generated) this.logger.warn("AUTH_KEY_SECRET is not set: generated a development one in DATA_DIR");
      this.keySecret = secret.value;
    }
    this.decoyHash = await hashPassword(newSecret(), this.settings.config.auth.passwordHashCost);
    await this.ensureSigningKey();
    await this.ensureFirstAdmin();
    // The node starts (other services may be fine), but says at once why it cannot sign; readiness fails meanwhile.
    const signing = (await this.readinessChecks()).find((check) => check.name === "auth:signing-key");
    if (signing && !signing.ok) this.logger.error(`Not ready: ${signing.error}; logins will fail until it is fixed`);
  },

  methods: {
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
  },
};

export default AuthService;
