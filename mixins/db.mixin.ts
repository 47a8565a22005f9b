/**
 * Gives a service its own PostgreSQL database through moleculer-db and the Sequelize adapter.
 *
 * On start it creates the service's database when missing (named after the service, see `databaseUrlFor`),
 * connects, and runs the service's migrations before the service is announced to the cluster. The model is never
 * `sync`ed: tables come only from migrations. moleculer-db's generic CRUD actions are switched off, so every action a
 * service exposes is written, validated and permissioned on purpose. Readiness reports whether the database answers.
 */
import DbService from "moleculer-db";
import SqlAdapter from "moleculer-db-adapter-sequelize";
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import {
  QueryTypes,
  type Model,
  type ModelAttributes,
  type ModelOptions,
  type ModelStatic,
  type Sequelize,
} from "sequelize";
import { config, type ServiceName } from "../lib/config";
import {
  actAsRole,
  createSequelize,
  databaseUrlFor,
  ensureDatabase,
  grantWriterRole,
  redactUrl,
  replicaUrlFor,
  runMigrations,
  writerRoleOf,
  type Migration,
} from "../lib/database";
import { timedCheck } from "../lib/health";
import type { ReadinessCheck } from "../contracts/health";

export interface DbMixinOptions {
  /** The owning service; its database is named after it. */
  service: ServiceName;
  model: { name: string; define: ModelAttributes; options?: ModelOptions };
  migrations: Migration[];
  /** Read from `DATABASE_REPLICA_URL` when one is configured. */
  readReplica?: boolean;
  /**
   * Tables whose rows no one may change once written. The service's queries then run as the database's writer role,
   * which may only read and insert them (lib/database.ts `grantWriterRole`); migrations still run as the URL's user.
   */
  appendOnly?: string[];
}

/** What a service using the mixin can rely on at run time. */
export interface DbServiceThis {
  sequelize: Sequelize;
  /** The primary's URL of the service's database. */
  databaseUrl: string;
  model: ModelStatic<Model>;
}

export interface DbMethods {
  connect(): Promise<void>;
  readinessChecks(): Promise<ReadinessCheck[]>;
}

export interface DbSettings extends ServiceSettingSchema {
  idField: string;
}

/** The adapter's typings declare one constructor argument; at run time it passes all of them on (`new Sequelize(...)`)
 * and reads `noSync` from the fourth. */
type AdapterConstructor = new (
  sequelize: Sequelize,
  ...rest: [undefined, undefined, { noSync: boolean }]
) => SqlAdapter;

const GENERIC_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"] as const;

export function dbMixin(options: DbMixinOptions): Partial<ServiceSchema> {
  const cfg = config();
  const url = databaseUrlFor(options.service, cfg);
  const replicaUrl = options.readReplica ? replicaUrlFor(options.service, cfg) : null;
  const sequelize = createSequelize(url, cfg.database.poolMax, replicaUrl);
  const appendOnly = options.appendOnly?.length ? options.appendOnly : undefined;
  // From the pool's first connection, not once the role is granted: one opened before (a readiness probe during the
  // migrations) would otherwise stay in the pool as the owner, able to rewrite the append-only tables. Until the role
  // exists, connecting fails, and the service is simply not ready.
  if (appendOnly) actAsRole(sequelize, writerRoleOf(url));
  const settings: DbSettings = { idField: "id" };

  return {
    mixins: [DbService as unknown as Partial<ServiceSchema>],
    // The adapter gets our Sequelize instance and `noSync`, so it never creates or alters tables itself.
    adapter: new (SqlAdapter as unknown as AdapterConstructor)(sequelize, undefined, undefined, { noSync: true }),
    model: options.model,
    settings,
    actions: Object.fromEntries(GENERIC_ACTIONS.map((name) => [name, false])),

    created() {
      this.sequelize = sequelize;
      this.databaseUrl = url;
    },

    methods: {
      /** Replaces moleculer-db's `connect` (which its `started` retries every second until it succeeds). */
      async connect(this: Service & { adapter: SqlAdapter }): Promise<void> {
        if (await ensureDatabase(url)) this.logger.info(`Created database ${redactUrl(url)}`);
        // Migrations read their own bookkeeping, which must come from the primary, never a lagging replica, and run
        // as the owner even where the service's own connections act as its writer role.
        const migrator = replicaUrl || appendOnly ? createSequelize(url, 1) : sequelize;
        try {
          const applied = await runMigrations(url, migrator, options.migrations);
          if (applied.length > 0) this.logger.info(`Applied migrations: ${applied.join(", ")}`);
          if (appendOnly) await grantWriterRole(migrator, url, appendOnly);
        } finally {
          if (migrator !== sequelize) await migrator.close();
        }
        await this.adapter.connect();
      },

      async readinessChecks(): Promise<ReadinessCheck[]> {
        const primary = timedCheck(`database:${options.service}`, async () => {
          if (!appendOnly) return sequelize.query("SELECT 1", { useMaster: true });
          // Not ready while the role the service writes with could change what must stay as written.
          const [{ role, mutable }] = await sequelize.query<{ role: string; mutable: boolean }>(
            `SELECT current_user AS role, bool_or(has_table_privilege(t, 'UPDATE') OR has_table_privilege(t, 'DELETE')
               OR has_table_privilege(t, 'TRUNCATE')) AS mutable FROM unnest($1::text[]) AS t`,
            { bind: [appendOnly], type: QueryTypes.SELECT, useMaster: true },
          );
          if (mutable) throw new Error(`${role} may change the append-only tables ${appendOnly.join(", ")}`);
        });
        if (!replicaUrl) return [await primary];
        const replica = timedCheck(`database:${options.service}:replica`, () =>
          sequelize.query("SELECT 1", { useMaster: false }),
        );
        return Promise.all([primary, replica]);
      },
    },
  };
}
