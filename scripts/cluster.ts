/**
 * `npm run cluster`: the system as a local cluster, the roles of the compose file as separate processes joined over
 * NATS, each on its own ports: a `nats-server -js` of its own (unless `TRANSPORTER` names one) with its store under
 * `DATA_DIR/nats`, the embedded PostgreSQL (unless `DATABASE_URL` names a server), then one `bin/start.ts` process
 * per role. Their output is prefixed with the role. One Ctrl-C stops the roles, then NATS and the database; a second
 * one kills the roles.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { ensureUiBuilt } from "../bin/ui";
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedPostgres } from "../lib/embedded-postgres";
import { PROJECT_ROOT } from "../lib/paths";
import { freePort, portFree } from "../lib/ports";

/** The compose file's roles, in start order (the gateway last, so it finds the others). */
const ROLES = [
  { name: "identity", services: "auth" },
  { name: "commerce", services: "products,orders" },
  { name: "workflow", services: "exec,dlq,sagas" },
  { name: "providers", services: "payments,shipping" },
  { name: "operations", services: "audit,logs,alerts" },
  { name: "gateway", services: "api" },
];

const env = process.env;
const dataDir = path.resolve(env.DATA_DIR || ".data");
const basePort = Number(env.PORT || 3000);
const baseMetricsPort = Number(env.METRICS_PORT || 3030);
const log = (message: string) => console.info(`[cluster] ${message}`);

/** A start that cannot go on for a reason the user can fix; its message says how. */
class ClusterStartError extends Error {}

interface Role {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
}

/** Prefixes every line of a child's output with its name. */
function relay(name: string, child: ChildProcess): void {
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on("line", (line) => console.info(`${name.padEnd(10)} | ${line}`));
  }
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("close", () => resolve());
  });
}

async function startNats(): Promise<{ url: string; child?: ChildProcess }> {
  if (env.TRANSPORTER) return { url: env.TRANSPORTER };
  if (spawnSync("nats-server", ["--version"]).error) {
    throw new ClusterStartError(
      "npm run cluster needs nats-server on PATH (Debian: apt-get install nats-server; elsewhere: " +
        "https://docs.nats.io/running-a-nats-service/introduction/installation), or TRANSPORTER naming a NATS server",
    );
  }
  const wanted = Number(env.CLUSTER_NATS_PORT || 4222);
  const port = (await portFree(wanted)) ? wanted : await freePort();
  if (port !== wanted) log(`Port ${wanted} is taken: NATS listens on ${port} (CLUSTER_NATS_PORT chooses another)`);
  const storeDir = path.join(dataDir, "nats");
  await mkdir(storeDir, { recursive: true });
  // In a process group of its own, so the terminal's Ctrl-C does not stop it under roles that are still stopping.
  const child = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  relay("nats", child);
  for (let waited = 0; await portFree(port); waited += 100) {
    if (waited > 10_000 || child.exitCode !== null) throw new Error(`nats-server did not listen on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  log(`NATS (JetStream) on nats://127.0.0.1:${port}, store ${storeDir}`);
  return { url: `nats://127.0.0.1:${port}`, child };
}

/** Starts a role and resolves once it logs that it is ready; rejects if it ends first. */
function startRole(
  role: (typeof ROLES)[number],
  index: number,
  common: Record<string, string>,
): { role: Role; ready: Promise<void> } {
  const port = role.name === "gateway" ? basePort : basePort + 1 + index;
  const child = spawn(process.execPath, ["--import", "tsx", path.join(PROJECT_ROOT, "bin", "start.ts")], {
    env: {
      ...env,
      ...common,
      SERVICES: role.services,
      NODE_ID: role.name,
      PORT: String(port),
      METRICS_PORT: String(baseMetricsPort + index),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  relay(role.name, child);
  const exited = exitOf(child);
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.includes("Ready in")) resolve();
    });
    exited.then(() => reject(new Error(`${role.name} (port ${port}) ended before it was ready; see its lines above`)));
  });
  return { role: { name: role.name, child, exited }, ready };
}

/**
 * Until the gateway routes every role's services: a role that is ready has joined, but the gateway adds its routes a
 * moment later (when the service registry changes), and a request in between would answer 404.
 */
async function gatewayRoutesAll(): Promise<void> {
  const services = ROLES.flatMap((role) => role.services.split(",")).filter((service) => service !== "api");
  for (let waited = 0; ; waited += 250) {
    const paths = await fetch(`http://127.0.0.1:${basePort}/api/openapi.json`)
      .then((res) => res.json() as Promise<{ paths: Record<string, unknown> }>)
      .then((doc) => Object.keys(doc.paths))
      .catch(() => [] as string[]);
    const missing = services.filter((service) => !paths.some((route) => route.startsWith(`/api/${service}`)));
    if (missing.length === 0) return;
    if (waited > 30_000) throw new Error(`The gateway has no routes for ${missing.join(", ")} after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function main(): Promise<void> {
  const roles: Role[] = [];
  let nats: ChildProcess | undefined;
  let database: EmbeddedPostgres | undefined;
  let stopping = false;

  const stopAll = async (code: number) => {
    for (const role of roles) role.child.kill("SIGTERM");
    await Promise.all(roles.map((role) => role.exited));
    nats?.kill("SIGTERM");
    if (nats) await exitOf(nats);
    await database?.stop().catch((err: Error) => log(`Stopping the embedded PostgreSQL: ${err.message}`));
    log("Stopped");
    process.exit(code);
  };
  const onSignal = (signal: string) => {
    if (stopping) {
      log(`${signal} again: killing the roles`);
      for (const role of roles) role.child.kill("SIGKILL");
      return;
    }
    stopping = true;
    log(`${signal} received: stopping the roles, then NATS and the database`);
    void stopAll(0);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  try {
    // Built once here, not by every role at once.
    await ensureUiBuilt(log);
    const transport = await startNats();
    nats = transport.child;
    let databaseUrl = env.DATABASE_URL;
    if (!databaseUrl) {
      database = await startEmbeddedPostgres({ dataDir, port: Number(env.EMBEDDED_PG_PORT || 54320), log });
      databaseUrl = database.url;
    }
    const common = { TRANSPORTER: transport.url, DATABASE_URL: databaseUrl, DATA_DIR: dataDir };
    const started = ROLES.map((role, index) => startRole(role, index, common));
    roles.push(...started.map(({ role }) => role));
    await Promise.all(started.map(({ ready }) => ready));
    await gatewayRoutesAll();
  } catch (err) {
    if (stopping) return;
    stopping = true;
    const known = err instanceof EmbeddedPostgresError || err instanceof ClusterStartError;
    console.error(known ? (err as Error).message : `[cluster] ${(err as Error).stack ?? err}`);
    await stopAll(1);
    return;
  }
  log(
    `Cluster ready: ${roles.map((role) => role.name).join(", ")}; gateway on http://localhost:${basePort} ` +
      `(health of the others on ports ${basePort + 1}-${basePort + ROLES.length - 1}). Ctrl-C stops it all.`,
  );
  // A role that ends on its own takes the cluster down with it, saying which.
  for (const role of roles) {
    void role.exited.then(() => {
      if (stopping) return;
      stopping = true;
      log(`${role.name} ended unexpectedly: stopping the cluster`);
      void stopAll(1);
    });
  }
}

void main();
