/**
 * PostgreSQL plumbing shared by the data services, with no broker in it: which database a service owns, creating
 * that database, the Sequelize instance, and versioned migrations run under a lock.
 */
import { Client, types, type ClientConfig } from "pg";
import { QueryTypes, Sequelize, type QueryInterface } from "sequelize";
import { SequelizeStorage, Umzug } from "umzug";
import type { Config, ServiceName } from "./config";
import { invalidFields } from "./errors";
import { isUnstorableText } from "./storable";
import type { Page } from "./paging";

/** What a migration receives: run DDL through `queryInterface`, or raw SQL through `sequelize.query`. */
export interface MigrationContext {
  sequelize: Sequelize;
  queryInterface: QueryInterface;
}

/** One versioned schema change. Names sort in the order they run (`0001-create-products`, ...). */
export interface Migration {
  name: string;
  up: (context: MigrationContext) => Promise<void>;
  down?: (context: MigrationContext) => Promise<void>;
}

/** The database URL a service uses: its own override, or `DATABASE_URL` with the database named after the service. */
export function databaseUrlFor(service: ServiceName, config: Config): string {
  const override = config.database.overrides[service];
  if (override) return override;
  if (!config.database.url) throw new Error(`No database configured for ${service}: set DATABASE_URL`);
  const url = new URL(config.database.url);
  url.pathname = `/${config.database.namePrefix}${service}`;
  return url.toString();
}

/** The same service database on the replica server, or null when no replica is configured. */
export function replicaUrlFor(service: ServiceName, config: Config): string | null {
  if (!config.database.replicaUrl) return null;
  const url = new URL(config.database.replicaUrl);
  url.pathname = new URL(databaseUrlFor(service, config)).pathname;
  return url.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

/** Credentials and host of a URL, never its password: safe to log and to show in health reports. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}

/**
 * A pg client that listens for 'error' from the moment it is made, and ends itself on one. A client that emits
 * 'error' with no listener has Node throw it at the process, and PostgreSQL shutting down (a restart, a failover)
 * sends its FATAL to every session, even one that has just finished connecting: Sequelize listens only once the
 * connection is handed to it, and a FATAL that came in the same packet as the end of the handshake reached a client
 * nobody listened to and took the node down. Ended, the client is refused by Sequelize's pool (it drops a connection
 * that is ending), and whoever holds it sees the loss as the failure of its next statement.
 */
export class ErrorHandledClient extends Client {
  constructor(config: string | ClientConfig) {
    super(config);
    this.on("error", () => void this.end().catch(() => undefined));
  }
}

/** What Sequelize's postgres dialect takes from pg (`dialectModule`), with the client above in place of pg's own. */
const pgDialect = { Client: ErrorHandledClient, types };

const DUPLICATE_DATABASE = "42P04";
const UNIQUE_VIOLATION = "23505";

/** Creates the database of `url` on its server when it does not exist yet. Safe when several nodes race to do it. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url);
  const maintenance = new URL(url);
  maintenance.pathname = "/postgres";
  const client = new ErrorHandledClient({ connectionString: maintenance.toString() });
  await client.connect();
  try {
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (found.rowCount) return false;
    await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
    return true;
  } catch (err) {
    // Two nodes creating the same database at once: the loser sees one of these, and the database exists.
    const code = (err as { code?: string }).code;
    if (code === DUPLICATE_DATABASE || code === UNIQUE_VIOLATION) return false;
    throw err;
  } finally {
    await client.end();
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function connectionOf(url: string) {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

/**
 * The Sequelize instance of a service database. With a replica URL, Sequelize's replication mode sends reads to the
 * replica and writes and transactions to the primary; a query can insist on the primary with `useMaster: true`.
 */
export function createSequelize(url: string, poolMax: number, replicaUrl: string | null = null): Sequelize {
  const options = {
    dialect: "postgres" as const,
    dialectModule: pgDialect,
    logging: false,
    pool: { max: poolMax, min: 0, idle: 10_000, acquire: 30_000 },
  };
  const sequelize = replicaUrl
    ? new Sequelize(databaseName(url), "", "", {
        ...options,
        replication: { write: connectionOf(url), read: [connectionOf(replicaUrl)] },
      })
    : new Sequelize(url, options);
  sequelize.addHook("beforeQuery", (query: { bind?: unknown; replacements?: unknown }) => {
    refuseUnstorableText(query.bind);
    refuseUnstorableText(query.replacements);
  });
  return sequelize;
}

/**
 * Throws a 422 when a query would bind text PostgreSQL cannot store as given (lib/storable.ts), before it is sent:
 * every service's writes, whatever called them (the gateway refuses such requests, internal and REPL calls do not pass
 * it), fail with the caller's mistake named instead of a database error or a silently altered value. `jsonb` values
 * are bound as `storableJson` text, which never holds such text.
 */
function refuseUnstorableText(values: unknown): void {
  if (values === null || typeof values !== "object") return;
  for (const [index, value] of Object.entries(values)) {
    const texts = Array.isArray(value) ? value : [value];
    if (texts.some((text) => typeof text === "string" && isUnstorableText(text))) {
      throw invalidFields("Text holds a character that cannot be stored (U+0000 or a lone surrogate)", [
        {
          field: `$${Array.isArray(values) ? Number(index) + 1 : index}`,
          message: "unstorable",
          type: "unstorableText",
        },
      ]);
    }
  }
}

/** An arbitrary constant: advisory locks are scoped to the database, and each service owns its database. */
const MIGRATION_LOCK_KEY = 7_426_001;

/**
 * Runs the migrations not yet applied, in order, recording them in `schema_migrations`. A session-level advisory lock
 * on a dedicated connection makes replicas that start together run them once, one after the other.
 */
export async function runMigrations(url: string, sequelize: Sequelize, migrations: Migration[]): Promise<string[]> {
  const lock = new ErrorHandledClient({ connectionString: url });
  await lock.connect();
  try {
    await lock.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    const context: MigrationContext = { sequelize, queryInterface: sequelize.getQueryInterface() };
    const umzug = new Umzug<MigrationContext>({
      migrations: migrations.map((migration) => ({
        name: migration.name,
        up: ({ context: ctx }) => migration.up(ctx),
        down: migration.down && (({ context: ctx }) => migration.down!(ctx)),
      })),
      context,
      storage: new SequelizeStorage({ sequelize, tableName: "schema_migrations" }),
      logger: undefined,
    });
    const applied = await umzug.up();
    return applied.map((migration) => migration.name);
  } finally {
    await lock.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await lock.end();
  }
}

const DUPLICATE_OBJECT = "42710";

/** The role a service with append-only tables writes with: one per database (roles are per server), no login. */
export function writerRoleOf(url: string): string {
  return `${databaseName(url)}_writer`;
}

/**
 * Creates (when missing) and grants the writer role of the database `owner` is connected to as the tables' owner:
 * read and write on every table, but only read and insert on the `appendOnly` ones, and no ownership, so it can
 * neither change their rows nor switch their triggers off. Run after the migrations on every start, so tables that
 * a new migration added are granted too; GRANT and REVOKE are idempotent.
 */
export async function grantWriterRole(owner: Sequelize, url: string, appendOnly: string[]): Promise<void> {
  const name = writerRoleOf(url);
  const role = quoteIdentifier(name);
  const [found] = await owner.query("SELECT 1 FROM pg_roles WHERE rolname = $1", {
    bind: [name],
    type: QueryTypes.SELECT,
  });
  if (!found) {
    // Two replicas starting together: the loser's CREATE finds the role made.
    await owner.query(`CREATE ROLE ${role} NOLOGIN`).catch((err: { parent?: { code?: string } }) => {
      if (err.parent?.code !== DUPLICATE_OBJECT && err.parent?.code !== UNIQUE_VIOLATION) throw err;
    });
  }
  const tables = appendOnly.map(quoteIdentifier).join(", ");
  // One transaction: granting on all tables gives the append-only ones UPDATE again until the REVOKE, and a connection
  // acting as the role in between (a readiness probe, a replica already serving) must never see that.
  await owner.transaction(async (transaction) => {
    for (const statement of [
      `GRANT ${role} TO CURRENT_USER`,
      `GRANT USAGE ON SCHEMA public TO ${role}`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`,
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`,
      `REVOKE UPDATE, DELETE, TRUNCATE ON ${tables} FROM ${role}`,
    ]) {
      await owner.query(statement, { transaction });
    }
  });
}

/** Every connection of `sequelize` acts as `role` (the URL's user stays the one that logs in), or fails to open. */
export function actAsRole(sequelize: Sequelize, role: string): void {
  sequelize.addHook("afterConnect", async (connection) => {
    try {
      await (connection as Client).query(`SET ROLE ${quoteIdentifier(role)}`);
    } catch (err) {
      // Sequelize neither pools nor closes a connection its hook refused: closed here, or it stays open for good.
      await (connection as Client).end().catch(() => undefined);
      throw err;
    }
  });
}

/** `text` for a LIKE pattern, matched as itself: its wildcards (`%`, `_`) and the escape character are escaped. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** A service's query helper (mixins/db.mixin.ts `rows`), as `selectPage` runs its statements through it. */
export type RowsQuery = <T extends object>(
  sql: string,
  bind: unknown[],
  options?: { replica?: boolean },
) => Promise<T[]>;

/**
 * One page of `SELECT * FROM <table> WHERE <where> ORDER BY <order>` and the count of all matches, from one statement
 * (one snapshot: two queries side by side could count a row committed between them that the page did not get).
 * `where` uses the binds `$1…$n`; the page's LIMIT and OFFSET follow them. Only a page past the end, which has no row
 * to carry the count, asks for it separately. `replica: true` reads from the replica, where there is one.
 */
export async function selectPage<R extends object, T>(
  rows: RowsQuery,
  query: { table: string; where: string; order: string; bind: unknown[]; replica?: boolean },
  page: number,
  pageSize: number,
  map: (row: R) => T,
): Promise<Page<T>> {
  const { table, where, order, bind, replica = false } = query;
  const limit = `LIMIT $${bind.length + 1} OFFSET $${bind.length + 2}`;
  const found = await rows<R & { page_total: string }>(
    `SELECT *, count(*) OVER () AS page_total FROM ${table} WHERE ${where} ORDER BY ${order} ${limit}`,
    [...bind, pageSize, (page - 1) * pageSize],
    { replica },
  );
  let total: number;
  if (found.length > 0) total = Number(found[0].page_total);
  else if (page === 1) total = 0;
  else {
    const [{ count }] = await rows<{ count: string }>(`SELECT count(*) FROM ${table} WHERE ${where}`, bind, {
      replica,
    });
    total = Number(count);
  }
  const pageRows = found.map(({ page_total: _total, ...row }) => map(row as unknown as R));
  return { rows: pageRows, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
}
