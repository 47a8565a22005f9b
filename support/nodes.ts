/**
 * Nodes for the tests and the benches: configurations isolated per test file or bench run (own database name prefix
 * and Moleculer namespace), nodes as separate OS processes started the way `npm start` starts them, waiting for a
 * condition, and cleanup of the databases. No jest in here: nodes in this process are test/support/nodes.ts's.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Client } from "pg";
import { loadConfig, type Config } from "../lib/config";
import { quoteIdentifier } from "../lib/database";
import { freePort } from "./servers";

export const ROOT = path.resolve(__dirname, "..");

export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error("TEST_DATABASE_URL is unset: run this suite through jest's integration or e2e project");
  return url;
}

export function testRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error("TEST_REDIS_URL is unset: run this suite through jest's integration or e2e project");
  return url;
}

export function testNatsUrl(): string {
  const url = process.env.TEST_NATS_URL;
  if (!url) throw new Error("TEST_NATS_URL is unset: run this suite through jest's integration or e2e project");
  return url;
}

/** A fresh isolation scope: databases `<prefix><service>` and a namespace no other test file uses. */
export function isolation(): { prefix: string; namespace: string } {
  const id = randomBytes(4).toString("hex");
  return { prefix: `t${id}_`, namespace: `test-${id}` };
}

export const TEST_ADMIN = { email: "admin@test.example", password: "admin-password-for-tests" };
export const TEST_KEY_SECRET = "a-signing-key-secret-only-for-tests-0123456789";
export const TEST_ANCHOR_KEY = "an-audit-anchor-key-only-for-tests-0123456789";

/** The URL of one database of a test scope (`<prefix><name>`) on the test server. */
export function scopedDatabaseUrl(prefix: string, name: string): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${prefix}${name}`;
  return url.toString();
}

/** Environment for a node of this test run; `env` adds or overrides keys. */
export function nodeEnv(scope: { prefix: string; namespace: string }, env: Record<string, string> = {}) {
  return {
    NODE_ENV: "test",
    DATABASE_URL: testDatabaseUrl(),
    DATABASE_NAME_PREFIX: scope.prefix,
    NAMESPACE: scope.namespace,
    METRICS_PORT: "0",
    LOG_LEVEL: "warn",
    LOG_FORMAT: "json",
    TRACING_EXPORTER: "none",
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
    AUTH_KEY_SECRET: TEST_KEY_SECRET,
    AUDIT_ANCHOR_KEY: TEST_ANCHOR_KEY,
    // Suites log in often from one address; the rate-limit suite sets its own limits.
    RATE_LIMIT_AUTH: "100000",
    RATE_LIMIT_LOGIN_ACCOUNT: "100000",
    RATE_LIMIT_IP: "100000",
    RATE_LIMIT_PROBE: "100000",
    ...env,
  };
}

export function testConfig(scope: { prefix: string; namespace: string }, env: Record<string, string> = {}): Config {
  return loadConfig(nodeEnv(scope, env));
}

export interface NodeProcess {
  child: ChildProcess;
  nodeID: string;
  port: number;
  output: () => string;
  /** Resolves with the exit code or signal when the process has ended, however it ended. */
  exited: Promise<number | string>;
  /** Sends the signal (to the process group for `npm start`) and resolves with the exit code or signal. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const running = new Set<NodeProcess>();

/** Processes whose command line names `dir` (a data directory): a node, the embedded server and its children. */
export function processesUsing(dir: string): string[] {
  try {
    return execFileSync("pgrep", ["-af", dir], { encoding: "utf8" }).trim().split("\n").filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Kills every node process a test file started and did not stop (a failed test must not leave any behind). */
export async function killLeftoverNodes(): Promise<void> {
  await Promise.all([...running].map((node) => node.stop("SIGKILL")));
}

/**
 * Starts `bin/start.ts` (or another node `script`) as its own OS process, as `npm start` does (in `cwd`, the checkout
 * by default), and waits until it
 * logs that it is ready (at level info, whatever `LOG_LEVEL` the caller chose). A node that is not ready in time is
 * killed.
 * For a bench's nodes (not with `viaNpmStart`): `nodeArgs` go to Node after `--import tsx` (so a preload may be
 * TypeScript: `--import <file>`; or `--cpu-prof`), `ipc` opens an IPC channel to the child (`child.send`, its
 * "message" events), and `waitForReady: false` resolves once the process is spawned and keeps the `LOG_LEVEL` of `env`
 * (info would log every request): the caller then waits for readiness its own way.
 */
export async function startNodeProcess(
  env: Record<string, string>,
  {
    timeoutMs = 40_000,
    viaNpmStart = false,
    script = "bin/start.ts",
    cwd = ROOT,
    nodeArgs = [] as string[],
    ipc = false,
    waitForReady = true,
  } = {},
): Promise<NodeProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const nodeID = env.NODE_ID ?? `node-${randomBytes(3).toString("hex")}`;
  const [command, args] = viaNpmStart
    ? ["npm", ["start"]]
    : [process.execPath, ["--import", "tsx", ...nodeArgs, script]];
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env, PORT: String(port), NODE_ID: nodeID, ...(waitForReady && { LOG_LEVEL: "info" }) },
    stdio: ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
    // `npm start` gets its own process group, so a signal can go to the whole group as a terminal's Ctrl-C does.
    detached: viaNpmStart,
  });
  const signal = (name: NodeJS.Signals) => (viaNpmStart ? process.kill(-child.pid!, name) : child.kill(name));
  let output = "";
  // "close" (not "exit"): under `npm start` npm may end first, while the node still writes its last log lines.
  const exited = new Promise<number | string>((resolve) => {
    child.once("close", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  if (waitForReady) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        signal("SIGKILL");
        reject(new Error(`${nodeID} not ready after ${timeoutMs} ms:\n${output}`));
      }, timeoutMs);
      const onData = () => {
        if (output.includes("Ready in")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${nodeID} exited (${code}) before it was ready:\n${output}`));
      });
    });
  }
  const node: NodeProcess = {
    child,
    nodeID,
    port,
    output: () => output,
    exited,
    async stop(name = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) signal(name);
      return exited;
    },
  };
  running.add(node);
  exited.then(() => running.delete(node));
  return node;
}

/** Waits until a node armed with a crash point (`FAILPOINTS`) has killed itself; resolves with how it ended. */
export async function crashed(node: NodeProcess, timeoutMs = 30_000): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${node.nodeID} did not reach its crash point`)), timeoutMs);
  });
  return Promise.race([node.exited, timeout]).finally(() => clearTimeout(timer));
}

/** Drops every database of a test scope (the prefix is random, so this touches nothing else). */
export async function dropScopeDatabases(prefix: string, serverUrl = testDatabaseUrl()): Promise<void> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
      [prefix],
    );
    for (const { datname } of rows)
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(datname)} WITH (FORCE)`);
    // Roles are per server: the writer roles of those databases (lib/database.ts `writerRoleOf`) go with them.
    const { rows: roles } = await client.query<{ rolname: string }>(
      "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) AND rolname LIKE '%\\_writer'",
      [prefix],
    );
    for (const { rolname } of roles) await client.query(`DROP ROLE IF EXISTS ${quoteIdentifier(rolname)}`);
  } finally {
    await client.end();
  }
}

/** The error body every failed request gets from the gateway. */
export interface ErrorBody {
  name: string;
  message: string;
  code: number;
  type: string;
  data: unknown;
}

/** A response body as the type the test expects it to be (the assertions check it). */
export async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`Timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}
