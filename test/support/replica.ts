/**
 * A PostgreSQL primary with a real streaming replica, owned by the test that starts it: the primary is initialised
 * for replication, the replica is made with `pg_basebackup -R` and started on another port, both as the `postgres`
 * user when running as root. Uses the machine's PostgreSQL server binaries (Debian's `postgresql` package).
 */
import { execFile } from "node:child_process";
import { appendFile, chmod, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { freePort } from "../../support/servers";

const run = promisify(execFile);

export const REPLICA_TOOLS_MISSING =
  "The replica suites need PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup): apt-get install postgresql.";

async function serverBinaries(): Promise<string> {
  const root = "/usr/lib/postgresql";
  const versions = await readdir(root).catch(() => [] as string[]);
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(REPLICA_TOOLS_MISSING);
  return path.join(root, newest, "bin");
}

async function asServerUser(): Promise<{ uid?: number; gid?: number }> {
  if (userInfo().uid !== 0) return {};
  const { stdout: uid } = await run("id", ["-u", "postgres"]);
  const { stdout: gid } = await run("id", ["-g", "postgres"]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

export interface ReplicatedPostgres {
  primaryUrl: string;
  replicaUrl: string;
  stop(): Promise<void>;
}

async function waitForConnections(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export async function startReplicatedPostgres(): Promise<ReplicatedPostgres> {
  const bin = await serverBinaries();
  const user = await asServerUser();
  const dir = await mkdtemp(path.join(tmpdir(), "aicunet-replica-"));
  await chmod(dir, 0o777); // the server user creates the clusters in here
  const primaryDir = path.join(dir, "primary");
  const replicaDir = path.join(dir, "replica");
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const tool = (name: string, args: string[]) => run(path.join(bin, name), args, user);
  const serverOptions = (port: number) => `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;

  await tool("initdb", [
    `--pgdata=${primaryDir}`,
    "--username=postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
  ]);
  await appendFile(primaryDir + "/postgresql.conf", "\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n");
  await tool("pg_ctl", [
    "start",
    `--pgdata=${primaryDir}`,
    "--wait",
    `--log=${dir}/primary.log`,
    "-o",
    serverOptions(primaryPort),
  ]);
  const stopAll = async () => {
    for (const data of [replicaDir, primaryDir]) {
      await tool("pg_ctl", ["stop", `--pgdata=${data}`, "--mode=immediate", "--wait"]).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await tool("pg_basebackup", [
      "-h",
      "127.0.0.1",
      "-p",
      String(primaryPort),
      "-U",
      "postgres",
      "-D",
      replicaDir,
      "-R",
      "-X",
      "stream",
    ]);
    await tool("pg_ctl", [
      "start",
      `--pgdata=${replicaDir}`,
      "--wait",
      `--log=${dir}/replica.log`,
      "-o",
      serverOptions(replicaPort),
    ]);
    const primaryUrl = `postgres://postgres@127.0.0.1:${primaryPort}/postgres`;
    const replicaUrl = `postgres://postgres@127.0.0.1:${replicaPort}/postgres`;
    await waitForConnections(replicaUrl);
    return { primaryUrl, replicaUrl, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
