/** The auth service's first admin, created when the service starts and no admin exists yet. */
import { randomBytes, randomUUID } from "node:crypto";
import type { Service, ServiceSchema } from "moleculer";
import { normalizeEmail } from "../lib/account-input";
import { DEFAULT_ADMIN_EMAIL } from "../lib/config";
import { hashPassword } from "../lib/passwords";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** An arbitrary constant: the advisory lock replicas take to create the first admin once. */
const FIRST_ADMIN_LOCK = 7_426_201;

export interface AuthFirstAdminMethods {
  ensureFirstAdmin(): Promise<void>;
}

type FirstAdminThis = Service<DbSettings> & DbServiceThis & DbMethods & AuthFirstAdminMethods;

export function authFirstAdminMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & AuthFirstAdminMethods, DbServiceThis>> = {
    methods: {
      /**
       * The first admin, from ADMIN_EMAIL / ADMIN_PASSWORD; never a fixed default password. Under a lock, so replicas
       * that start together create one. An existing account with that email is not promoted: its password is someone
       * else's choice, so the node refuses to start and says why. A generated password (development, no ADMIN_PASSWORD)
       * is written to the terminal once, never through the logger (whose records reach the log store, readable by
       * operators), and must be changed at the first sign-in.
       */
      async ensureFirstAdmin(this: FirstAdminThis) {
        const { auth, isProduction } = this.settings.config;
        let password = auth.adminPassword;
        const email = auth.adminEmail ?? DEFAULT_ADMIN_EMAIL;
        const created = await this.sequelize.transaction(async (transaction) => {
          await this.rows("SELECT pg_advisory_xact_lock($1)", [FIRST_ADMIN_LOCK], { transaction });
          const [admin] = await this.rows("SELECT 1 FROM users WHERE 'admin' = ANY(roles) LIMIT 1", [], {
            transaction,
          });
          if (admin) return false;
          if (!password) {
            if (isProduction)
              throw new Error("No admin exists: set ADMIN_PASSWORD (and ADMIN_EMAIL) for the first start");
            password = randomBytes(15).toString("base64url");
          }
          const [taken] = await this.rows("SELECT 1 FROM users WHERE lower(email) = lower($1)", [email], {
            transaction,
          });
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
              await hashPassword(password, auth.passwordHashCost),
              !auth.adminPassword,
            ],
            { transaction },
          );
          return true;
        });
        if (!created) return;
        if (auth.adminPassword) {
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
  return schema as Partial<ServiceSchema>;
}
