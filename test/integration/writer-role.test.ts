/**
 * The writer role of a service with append-only tables (lib/database.ts `grantWriterRole`), granted again on every
 * start while other connections act as it (a replica already serving, a readiness probe): at no moment may it change
 * the append-only rows, not even between granting on all tables and revoking on those.
 */
import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { createSequelize, ensureDatabase, grantWriterRole, quoteIdentifier, writerRoleOf } from "../../lib/database";

const serverUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const url = Object.assign(new URL(serverUrl), {
  pathname: `/t${randomBytes(4).toString("hex")}_writer_role`,
}).toString();

afterAll(async () => {
  const server = new Client({ connectionString: serverUrl });
  await server.connect();
  try {
    const database = new URL(url).pathname.slice(1);
    await server.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)} WITH (FORCE)`);
    await server.query(`DROP ROLE IF EXISTS ${quoteIdentifier(writerRoleOf(url))}`);
  } finally {
    await server.end();
  }
});

it("never lets the role change an append-only table while its grants are applied again", async () => {
  await ensureDatabase(url);
  const owner = createSequelize(url, 2);
  const watcher = new Client({ connectionString: url });
  try {
    await owner.query("CREATE TABLE records (id int PRIMARY KEY)");
    await owner.query("CREATE TABLE notes (id int PRIMARY KEY)");
    await grantWriterRole(owner, url, ["records"]);
    await watcher.connect();
    await watcher.query(`SET ROLE ${quoteIdentifier(writerRoleOf(url))}`);

    // Restarts grant again while the watcher, acting as the role, asks what it may do as often as it can.
    let granting = true;
    const seen: boolean[] = [];
    const watching = (async () => {
      while (granting) {
        const { rows } = await watcher.query<{ mutable: boolean }>(
          "SELECT has_table_privilege('records', 'UPDATE') OR has_table_privilege('records', 'DELETE') AS mutable",
        );
        seen.push(rows[0].mutable);
      }
    })();
    for (let start = 0; start < 30; start += 1) await grantWriterRole(owner, url, ["records"]);
    granting = false;
    await watching;

    expect(seen.length).toBeGreaterThan(30);
    expect(seen.filter(Boolean)).toEqual([]);
    // It still writes the other tables, and adds to the append-only one.
    await watcher.query("INSERT INTO records VALUES (1)");
    await watcher.query("INSERT INTO notes VALUES (1)");
    await watcher.query("UPDATE notes SET id = 2");
    await expect(watcher.query("UPDATE records SET id = 2")).rejects.toThrow(/permission denied/);
  } finally {
    await watcher.end().catch(() => undefined);
    await owner.close();
  }
});
