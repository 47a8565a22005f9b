/**
 * `npm run bench`: each gateway path against its bare baseline, measured one after the other in the same run with
 * the same load, reported as ratios:
 * 1. REST GET through the gateway vs the same handler on Node's `http` (issue 2);
 * 2. authenticated GET through the gateway vs the same handler on Fastify with the same JWT verification (issue 3).
 * Each server is its own process; the load generator (autocannon) runs in this one. The authenticated pair needs
 * PostgreSQL for the auth service: `DATABASE_URL`, else an embedded one in a temp directory.
 * Options: BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (default 32).
 * `npm run bench -- events` measures the event backbone against raw JetStream (bench/events.ts; needs nats-server).
 * `npm run bench -- sagas` measures the order saga over three node processes (bench/sagas.ts; needs nats-server).
 * `npm run bench -- audit` measures a REST write with the audit trail on and off (bench/audit.ts; needs nats-server).
 * `npm run bench -- ui` measures the web console's bundle and time to first render in Chromium (bench/ui.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "../lib/embedded-postgres";
import { auditBench, reportAudit } from "./audit";
import { dataPairs, httpRate, serviceDatabaseUrl, type RateResult } from "./data";
import { eventBackbone, reportEvents } from "./events";
import { reportSagas } from "./saga-report";
import { sagaBench } from "./sagas";
import { reportUi, uiBench } from "./ui";
import type { PublicJwk } from "../lib/signing-keys";
import { login, registerCustomer } from "../support/api";
import { dropScopeDatabases } from "../support/nodes";
import { freePort, startNats } from "../support/servers";
import { startTarget } from "./target-process";

const duration = Number(process.env.BENCH_DURATION ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ADMIN = { email: "bench@aicunet.local", password: "bench-admin-password" };

type Measurement = RateResult;

/** Warm-up, then the measured autocannon run, with this run's connections and duration. */
function measure(target: string, url: string, headers: Record<string, string> = {}): Promise<Measurement> {
  return httpRate(target, url, connections, duration, { headers });
}

async function run(
  mode: string,
  route: string,
  env: Record<string, string> = {},
  headers: Record<string, string> = {},
) {
  const target = await startTarget(mode, env);
  try {
    return await measure(mode, `${target.base}${route}`, headers);
  } finally {
    await target.stop("SIGKILL");
  }
}

function report(title: string, baseline: Measurement, gateway: Measurement): void {
  console.log(`\n${title}`);
  console.log("| target | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|");
  for (const r of [baseline, gateway]) {
    console.log(`| ${r.target} | ${r.requestsPerSecond} | ${r.p50} | ${r.p99} | ${r.errors} |`);
  }
  console.log(
    `ratio ${gateway.target} / ${baseline.target}: ${(gateway.requestsPerSecond / baseline.requestsPerSecond).toFixed(3)}`,
  );
}

/** A PostgreSQL for the targets that need one: `DATABASE_URL`, else an embedded one in a temp directory. */
async function withDatabase<T>(work: (env: Record<string, string>) => Promise<T>): Promise<T> {
  let dataDir: string | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  let stopPostgres = async (): Promise<void> => undefined;
  if (!databaseUrl) {
    dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-bench-"));
    const pg = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: () => undefined });
    databaseUrl = pg.url;
    stopPostgres = pg.stop;
  }
  const prefix = `bench${process.pid}_`;
  const secretsDir = dataDir ?? path.join(tmpdir(), `aicunet-bench-secrets-${process.pid}`);
  try {
    return await work({
      DATABASE_URL: databaseUrl,
      DATABASE_NAME_PREFIX: prefix,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      DATA_DIR: secretsDir,
    });
  } finally {
    // On someone else's server, the bench's databases (and their roles) go; an embedded one goes whole.
    if (!dataDir) await dropScopeDatabases(prefix, databaseUrl);
    await stopPostgres();
    await rm(secretsDir, { recursive: true, force: true });
  }
}

async function authenticatedPair(env: Record<string, string>): Promise<[Measurement, Measurement]> {
  const gateway = await startTarget("gateway-auth", env);
  try {
    const base = gateway.base;
    const headers = { authorization: `Bearer ${await login(base, ADMIN)}` };
    const { keys } = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: PublicJwk[] };
    const probe = await fetch(`${base}/api/bench/item?id=42`, { headers });
    if (probe.status !== 200)
      throw new Error(`authenticated bench route answers ${probe.status}: ${await probe.text()}`);
    const viaGateway = await measure("gateway-auth", `${base}/api/bench/item?id=42`, headers);
    await gateway.stop("SIGKILL");
    const viaFastify = await run("fastify-jwt", "/item?id=42", { BENCH_JWK: JSON.stringify(keys[0]) }, headers);
    return [viaFastify, viaGateway];
  } finally {
    await gateway.stop("SIGKILL");
  }
}

async function dataServices(env: Record<string, string>) {
  const dataEnv = { ...env, DATABASE_NAME_PREFIX: `${env.DATABASE_NAME_PREFIX}data_` };
  const node = await startTarget("gateway-data", dataEnv);
  let pairs: Awaited<ReturnType<typeof dataPairs>>;
  let authenticated: readonly [Measurement, Measurement];
  try {
    const base = node.base;
    const setup = {
      base,
      adminToken: await login(base, ADMIN),
      customerToken: await registerCustomer(base, "bench-customer@aicunet.local"),
      env: dataEnv,
    };
    pairs = await dataPairs(setup, connections, duration);
    authenticated = await authenticatedList(setup);
  } finally {
    await node.stop("SIGKILL");
  }
  // The same databases, the products service now on a node of its own.
  const remote = await remoteList(dataEnv);
  return { ...pairs, authenticatedList: authenticated, remoteList: [authenticated[1], remote] as const };
}

/**
 * Authenticated `GET /api/products` (10 rows, the products `dataPairs` seeded) vs Fastify verifying the same ES256
 * token and running the same query on the same database (issue 16).
 */
async function authenticatedList(setup: { base: string; adminToken: string; env: Record<string, string> }) {
  const headers = { authorization: `Bearer ${setup.adminToken}` };
  const viaGateway = await measure("GET /api/products (gateway)", `${setup.base}/api/products?pageSize=10`, headers);
  const { keys } = (await (await fetch(`${setup.base}/.well-known/jwks.json`)).json()) as { keys: PublicJwk[] };
  const viaFastify = await run(
    "fastify-jwt",
    "/products?pageSize=10",
    { BENCH_JWK: JSON.stringify(keys[0]), BENCH_PRODUCTS_URL: serviceDatabaseUrl(setup, "products") },
    headers,
  );
  return [viaFastify, viaGateway] as const;
}

/**
 * The same authenticated `GET /api/products` with the products service on a second node: the gateway (api, auth) and
 * the products node are two processes on a nats-server started for the run (issue 16).
 */
async function remoteList(env: Record<string, string>): Promise<Measurement> {
  const nats = await startNats();
  const cluster = { ...env, TRANSPORTER: nats.url, NAMESPACE: `bench-remote-${process.pid}` };
  const products = await startTarget("products-node", { ...cluster, NODE_ID: "bench-products" });
  const gateway = await startTarget("gateway-edge", { ...cluster, NODE_ID: "bench-edge" });
  try {
    const base = gateway.base;
    const headers = { authorization: `Bearer ${await login(base, ADMIN)}` };
    // The gateway's routes to products exist once the products node is discovered.
    for (let probe = 0; (await fetch(`${base}/api/products?pageSize=10`, { headers })).status !== 200; probe++) {
      if (probe === 30) throw new Error("the products node was not reachable through the gateway in 30 s");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return await measure("GET /api/products (products on another node)", `${base}/api/products?pageSize=10`, headers);
  } finally {
    await Promise.all([gateway.stop("SIGKILL"), products.stop("SIGKILL")]);
    await nats.stop();
  }
}

/**
 * `npm run bench` runs the HTTP suites (gateway, auth, data); `npm run bench -- data` (or `gateway`, `auth`,
 * `events`, `sagas`, `audit`, `ui`) runs the ones named. `events`, `sagas` and `audit` (they need nats-server) and
 * `ui` (it needs Chromium) run only when named.
 */
async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const runs = (suite: string) =>
    wanted.includes(suite) || (wanted.length === 0 && !["events", "sagas", "audit", "ui"].includes(suite));
  if (runs("gateway") || runs("auth") || runs("data") || runs("audit")) {
    console.log(`${connections} connections, ${duration} s per target, ${cpus().length} cores (${cpus()[0].model})`);
  } else {
    console.log(`${cpus().length} cores (${cpus()[0].model}), Node ${process.versions.node}`);
  }
  if (runs("gateway")) {
    const bare = await run("bare", "/item?id=42");
    const gateway = await run("gateway", "/api/bench/item?id=42");
    report("REST GET (issue 2)", bare, gateway);
  }
  if (runs("auth") || runs("data") || runs("events") || runs("sagas") || runs("audit") || runs("ui")) {
    await withDatabase(async (env) => {
      if (runs("auth")) {
        const [fastify, gatewayAuth] = await authenticatedPair(env);
        report("Authenticated REST GET (issue 3)", fastify, gatewayAuth);
      }
      if (runs("data")) {
        const { list, create, authenticatedList: authenticated, remoteList: remote } = await dataServices(env);
        report("Product list, 20 per page (issue 4)", list[0], list[1]);
        report("Order create (issue 4)", create[0], create[1]);
        report("Authenticated product list, 10 per page (issue 16)", authenticated[0], authenticated[1]);
        report("The same list with products on a second node over NATS (issue 16)", remote[0], remote[1]);
      }
      if (runs("events")) reportEvents(await eventBackbone(env.DATABASE_URL));
      if (runs("sagas")) reportSagas(await sagaBench(env.DATABASE_URL));
      if (runs("audit")) reportAudit(await auditBench(env, connections, duration));
      if (runs("ui")) reportUi(await uiBench(env.DATABASE_URL));
    });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
