/**
 * A service whose data is one entity that fits moleculer-db: its Sequelize model through moleculer-db's Sequelize
 * adapter, on top of the service's database as `dbMixin` gives it (migrations, `rows`, readiness, replica routing).
 *
 * The adapter gets the mixin's Sequelize instance and `noSync`, so it never creates or alters tables: they come only
 * from migrations. moleculer-db's generic CRUD actions are switched off, so every action a service exposes is
 * written, validated and permissioned on purpose. Connecting stays with `dbMixin` (its `started` retries until the
 * database answers, and the pool outlives a stop); the adapter only defines the model once the migrations have run.
 */
import DbService from "moleculer-db";
import SqlAdapter from "moleculer-db-adapter-sequelize";
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Model, ModelAttributes, ModelOptions, ModelStatic, Sequelize } from "sequelize";
import { dbMixin, type DbMethods, type DbMixinOptions, type DbServiceThis, type DbSettings } from "./db.mixin";

export interface EntityMixinOptions extends DbMixinOptions {
  /** The entity's model; every attribute a column the migrations create. */
  model: { name: string; define: ModelAttributes; options?: ModelOptions };
}

/** What a service using the mixin can rely on at run time: the database's, and the entity's model. */
export interface EntityServiceThis extends DbServiceThis {
  model: ModelStatic<Model>;
}

export interface EntitySettings extends DbSettings {
  idField: string;
}

/** The adapter's typings declare one constructor argument; at run time it passes all of them on (`new Sequelize(...)`)
 * and reads `noSync` from the fourth. */
type AdapterConstructor = new (
  sequelize: Sequelize,
  ...rest: [undefined, undefined, { noSync: boolean }]
) => SqlAdapter;

const GENERIC_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"] as const;

/** moleculer-db without its lifecycle: `dbMixin` connects (after the migrations), and its pool outlives a stop. */
function withoutLifecycle(schema: Partial<ServiceSchema>): Partial<ServiceSchema> {
  const { started: _started, stopped: _stopped, ...rest } = schema;
  return rest;
}

export function entityMixin({ model, ...options }: EntityMixinOptions): Partial<ServiceSchema> {
  const settings: ServiceSettingSchema & Pick<EntitySettings, "idField"> = { idField: "id" };
  const schema: Partial<ServiceSchema<ServiceSettingSchema, DbMethods, EntityServiceThis & { adapter: SqlAdapter }>> = {
    mixins: [withoutLifecycle(DbService as unknown as Partial<ServiceSchema>), dbMixin(options)],
    model,
    settings,
    actions: Object.fromEntries(GENERIC_ACTIONS.map((name) => [name, false])),

    /**
     * The adapter of this service instance, on the service's Sequelize instance (`dbMixin`'s `created` ran first).
     * Not an `adapter` key in the schema: Moleculer deep-clones a schema's keys when it merges mixins, which would give
     * the model a copy of the Sequelize instance, with a second pool of its own.
     */
    created() {
      this.adapter = new (SqlAdapter as unknown as AdapterConstructor)(this.sequelize, undefined, undefined, {
        noSync: true,
      });
      this.adapter.init(this.broker, this);
    },

    methods: {
      /** `dbMixin`'s `connect`, with the adapter's in place of its connection check: it also defines the model. */
      async connect() {
        await this.migrateDatabase();
        await this.adapter.connect();
      },
    },
  };
  // Typed on the service it is mixed into; `mixins` takes schemas of any service.
  return schema as unknown as Partial<ServiceSchema>;
}
