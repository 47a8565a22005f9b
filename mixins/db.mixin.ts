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
import type { Model, ModelAttributes, ModelOptions, ModelStatic, Sequelize } from "sequelize";
import { config, type ServiceName } from "../lib/config";
import {
  createSequelize,
  databaseUrlFor,
  ensureDatabase,
  redactUrl,
  replicaUrlFor,
  runMigrations,
  type Migration,
} from "../lib/database";
import { timedCheck, type ReadinessCheck } from "../lib/health";

export interface DbMixinOptions {
  /** The owning service; its database is named after it. */
  service: ServiceName;
  model: { name: string; define: ModelAttributes; options?: ModelOptions };
  migrations: Migration[];
  /** Read from `DATABASE_REPLICA_URL` when one is configured. */
  readReplica?: boolean;
}

/** What a service using the mixin can rely on at run time. */
export interface DbServiceThis {
  sequelize: Sequelize;
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
    },

    methods: {
      /** Replaces moleculer-db's `connect` (which its `started` retries every second until it succeeds). */
      async connect(this: Service & { adapter: SqlAdapter }): Promise<void> {
        if (await ensureDatabase(url)) this.logger.info(`Created database ${redactUrl(url)}`);
        await this.adapter.connect();
        // Migrations read their own bookkeeping, which must come from the primary, never a lagging replica.
        const migrator = replicaUrl ? createSequelize(url, 1) : sequelize;
        const applied = await runMigrations(url, migrator, options.migrations).finally(() =>
          migrator === sequelize ? undefined : migrator.close(),
        );
        if (applied.length > 0) this.logger.info(`Applied migrations: ${applied.join(", ")}`);
      },

      async readinessChecks(): Promise<ReadinessCheck[]> {
        const primary = timedCheck(`database:${options.service}`, () =>
          sequelize.query("SELECT 1", { useMaster: true }),
        );
        if (!replicaUrl) return [await primary];
        const replica = timedCheck(`database:${options.service}:replica`, () =>
          sequelize.query("SELECT 1", { useMaster: false }),
        );
        return Promise.all([primary, replica]);
      },
    },
  };
}
