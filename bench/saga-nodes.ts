/**
 * The saga bench's node processes: `bin/start.ts` as `npm start` runs it (support/nodes.ts `startNodeProcess`), with
 * bench/count-statements.ts preloaded so the bench can ask each node over IPC how many statements it has sent, and,
 * with `BENCH_CPU_PROF=<dir>`, a V8 CPU profile written there when the node stops.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { ClusterHealth } from "../contracts/health";
import { json, startNodeProcess, waitFor, type NodeProcess } from "../support/nodes";
import { STATEMENT_COUNT_REQUEST, type StatementCounts } from "./statement-counts";

export interface SagaNode {
  name: string;
  services: string;
  process: NodeProcess;
  /** The statements the node has sent so far, counted by bench/count-statements.ts inside it. */
  statements: () => Promise<StatementCounts>;
}

const COUNT_STATEMENTS = pathToFileURL(path.join(__dirname, "count-statements.ts")).href;

/** Starts node `name` with `services`; it is not ready yet (see `waitForCluster`). */
export async function startSagaNode(name: string, services: string, env: Record<string, string>): Promise<SagaNode> {
  // `--cpu-prof` is not allowed in NODE_OPTIONS, so it goes on the command line.
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const node = await startNodeProcess(
    { ...env, SERVICES: services, NODE_ID: name },
    // The nodes log at the `LOG_LEVEL` of `env` (warn): at info the gateway would log every request it is timed on.
    { nodeArgs: [...profile, "--import", COUNT_STATEMENTS], ipc: true, waitForReady: false },
  );
  const statements = () =>
    new Promise<StatementCounts>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not answer the statement count`)), 5000);
      node.child.once("message", (counts) => {
        clearTimeout(timer);
        resolve(counts as StatementCounts);
      });
      node.child.send(STATEMENT_COUNT_REQUEST);
    });
  return { name, services, process: node, statements };
}

/** SIGTERM, so the node stops in order (and writes its profile and statement log); SIGKILL if it hangs for 5 s. */
export async function stopSagaNode(node: SagaNode): Promise<void> {
  const timer = setTimeout(() => node.process.stop("SIGKILL"), 5000);
  await node.process.stop("SIGTERM");
  clearTimeout(timer);
}

/** Waits until the gateway's cluster view has every node up and ready; fails at once if one of them exits. */
export async function waitForCluster(base: string, nodes: SagaNode[], timeoutMs = 90_000): Promise<void> {
  const died = Promise.race(
    nodes.map((node) =>
      node.process.exited.then((code) => {
        throw new Error(`${node.name} exited (${code}) before the cluster was ready:\n${node.process.output()}`);
      }),
    ),
  );
  const ready = waitFor(
    async () => {
      const health = await json<ClusterHealth>(await fetch(`${base}/api/health`));
      const up = (name: string) => health.nodes?.some((n) => n.nodeID === name && n.state === "up" && n.ready);
      if (nodes.every((node) => up(node.name))) return true;
      // Thrown so that a timeout says what the gateway saw last.
      throw new Error(JSON.stringify(health.nodes?.map((n) => [n.nodeID, n.state, n.ready])));
    },
    timeoutMs,
    "the saga bench's cluster to be ready",
  );
  await Promise.race([ready, died]);
}
