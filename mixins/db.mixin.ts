/**
 * Gives a service its own PostgreSQL database, with no ORM in between: the Sequelize instance of that database, its
 * migrations, one typed query helper (`rows`) and the read-your-writes routing to a read replica (`readYourWrites`).
 * A service with an entity that fits moleculer-db takes `entityMixin` (mixins/entity.mixin.ts), built on this one.
 *
 * On start it creates the service's database when missing (named after the service, see `databaseUrlFor`), runs the
 * service's migrations and connects before the service is announced to the cluster, retrying every second until that
 * succeeds. Tables come only from migrations, never from `sync`. Readiness reports whether the database answers.
 *
 * Defaults: no read replica (`readReplica: false`); no append-only tables; `rows` reads from the primary unless asked
 * for the replica; a read routed by `readYourWrites` waits up to `replicaWaitMs` (500 ms) for the replica.
 */
import type { ServiceSchema } from "moleculer";
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import type { ConfiguredSettings, ServiceName } from "../lib/config";
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
  migrations: Migration[];
  /** Read from `DATABASE_REPLICA_URL` when one is configured. Default false. */
  readReplica?: boolean;
  /** How long `readYourWrites` waits for the replica to catch up before it sends the read to the primary. */
  replicaWaitMs?: number;
  /**
   * Tables whose rows no one may change once written. The service's queries then run as the database's writer role,
   * which may only read and insert them (lib/database.ts `grantWriterRole`); migrations still run as the URL's user.
   */
  appendOnly?: string[];
}

const DEFAULTS = { readReplica: false, replicaWaitMs: 500 } satisfies Partial<DbMixinOptions>;

/** Where one statement of `rows` runs. */
export interface QueryOptions {
  /** Inside this transaction, on its connection (the primary's). */
  transaction?: Transaction;
  /** On the replica, where the service has one; the primary otherwise. Default false: the primary. */
  replica?: boolean;
}

/** Where a read may go, as `readYourWrites` decided: spread it into the `QueryOptions` of the reads it covers. */
export type ReadFrom = Required<Pick<QueryOptions, "replica">>;

/** What a service using the mixin can rely on at run time. */
export interface DbServiceThis {
  sequelize: Sequelize;
  /** The primary's URL of the service's database. */
  databaseUrl: string;
}

/** The mixin's own state. */
interface DbState {
  /** The replica's URL of the service's database, when it reads from one. */
  replicaUrl: string | null;
  /** Set when the service stops: a connection still being retried gives up. */
  databaseStopping: boolean;
}

export interface DbMethods {
  /**
   * The rows a statement returns (a SELECT, or a write with RETURNING; none for a write without it), its `$n`
   * parameters bound from `bind`.
   */
  rows<T extends object>(sql: string, bind?: unknown[], options?: QueryOptions): Promise<T[]>;
  /**
   * Where a read may go without missing a write committed before it began: the replica once it has replayed the
   * primary's flushed WAL position (every acknowledged commit is flushed, so the replica then holds every write
   * committed before this read began), else the primary after `replicaWaitMs`. Without a replica, the primary.
   */
  readYourWrites(): Promise<ReadFrom>;
  /** Creates the database when missing, runs the migrations not yet applied and grants the writer role. */
  migrateDatabase(): Promise<void>;
  /** Migrates, then checks that the service's own connections open. Retried by `started` until it succeeds. */
  connect(): Promise<void>;
  readinessChecks(): Promise<ReadinessCheck[]>;
}

/** The settings the mixin reads: the node's configuration (the entity mixin adds moleculer-db's). */
export type DbSettings = ConfiguredSettings;

const RECONNECT_DELAY_MS = 1000;

export function dbMixin(opts: DbMixinOptions): Partial<ServiceSchema> {
  const options = { ...DEFAULTS, ...opts };
  const appendOnly = options.appendOnly?.length ? options.appendOnly : undefined;

  const schema: Partial<ServiceSchema<DbSettings, DbMethods, DbServiceThis & DbState>> = {
    /**
     * The service's pool, on the node's configuration. Not closed when the service stops: calls still in flight end
     * on it, and its idle connections close after the pool's idle timeout.
     */
    created() {
      const cfg = this.settings.config;
      this.databaseUrl = databaseUrlFor(options.service, cfg);
      this.replicaUrl = options.readReplica ? replicaUrlFor(options.service, cfg) : null;
      this.sequelize = createSequelize(this.databaseUrl, cfg.database.poolMax, this.replicaUrl);
      // From the pool's first connection, not once the role is granted: one opened before (a readiness probe during
      // the migrations) would otherwise stay in the pool as the owner, able to rewrite the append-only tables. Until
      // the role exists, connecting fails, and the service is simply not ready.
      if (appendOnly) actAsRole(this.sequelize, writerRoleOf(this.databaseUrl));
    },

    /**
     * Not announced until connected: a database that is down or still starting is waited for, every second (until
     * the service stops).
     */
    started(): Promise<void> {
      this.databaseStopping = false;
      return new Promise((resolve) => {
        const connecting = () => {
          this.connect()
            .then(resolve)
            .catch((err: unknown) => {
              this.logger.error("Connection error!", err);
              if (this.databaseStopping) return;
              setTimeout(() => {
                this.logger.warn("Reconnecting...");
                connecting();
              }, RECONNECT_DELAY_MS);
            });
        };
        connecting();
      });
    },

    /** Ends the retries of a service stopped before it connected. */
    stopped() {
      this.databaseStopping = true;
    },

    methods: {
      async rows<T extends object>(sql: string, bind: unknown[] = [], query: QueryOptions = {}): Promise<T[]> {
        const { transaction, replica = false } = query;
        // Sequelize sends a SELECT outside a transaction to the replica unless told `useMaster`; without a replica
        // there is one pool and `useMaster` changes nothing.
        return this.sequelize.query<T>(sql, { bind, type: QueryTypes.SELECT, transaction, useMaster: !replica });
      },

      async readYourWrites(): Promise<ReadFrom> {
        if (!this.replicaUrl) return { replica: false };
        const [{ lsn }] = await this.rows<{ lsn: string }>("SELECT pg_current_wal_flush_lsn()::text AS lsn");
        const deadline = Date.now() + options.replicaWaitMs;
        for (;;) {
          const [{ caught_up: caughtUp }] = await this.rows<{ caught_up: boolean }>(
            "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS caught_up",
            [lsn],
            { replica: true },
          );
          if (caughtUp) return { replica: true };
          if (Date.now() > deadline) return { replica: false };
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      },

      async migrateDatabase(): Promise<void> {
        const url = this.databaseUrl;
        if (await ensureDatabase(url)) this.logger.info(`Created database ${redactUrl(url)}`);
        // Migrations read their own bookkeeping, which must come from the primary, never a lagging replica, and run
        // as the owner even where the service's own connections act as its writer role.
        const migrator = this.replicaUrl || appendOnly ? createSequelize(url, 1) : this.sequelize;
        try {
          const applied = await runMigrations(url, migrator, options.migrations);
          if (applied.length > 0) this.logger.info(`Applied migrations: ${applied.join(", ")}`);
          if (appendOnly) await grantWriterRole(migrator, url, appendOnly);
        } finally {
          if (migrator !== this.sequelize) await migrator.close();
        }
      },

      async connect(): Promise<void> {
        await this.migrateDatabase();
        await this.sequelize.authenticate();
      },

      async readinessChecks(): Promise<ReadinessCheck[]> {
        const primary = timedCheck(`database:${options.service}`, async () => {
          if (!appendOnly) return this.sequelize.query("SELECT 1", { useMaster: true });
          // Not ready while the role the service writes with could change what must stay as written.
          const [{ role, mutable }] = await this.sequelize.query<{ role: string; mutable: boolean }>(
            `SELECT current_user AS role, bool_or(has_table_privilege(t, 'UPDATE') OR has_table_privilege(t, 'DELETE')
               OR has_table_privilege(t, 'TRUNCATE')) AS mutable FROM unnest($1::text[]) AS t`,
            { bind: [appendOnly], type: QueryTypes.SELECT, useMaster: true },
          );
          if (mutable) throw new Error(`${role} may change the append-only tables ${appendOnly.join(", ")}`);
        });
        if (!this.replicaUrl) return [await primary];
        const replica = timedCheck(`database:${options.service}:replica`, () =>
          this.sequelize.query("SELECT 1", { useMaster: false }),
        );
        return Promise.all([primary, replica]);
      },
    },
  };
  // Typed on the service it is mixed into; `mixins` takes schemas of any service.
  return schema as unknown as Partial<ServiceSchema>;
}
