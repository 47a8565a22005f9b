/**
 * Nodes probed for readiness every second from the moment they are spawned, as Kubernetes' startup and readiness
 * probes (and any supervisor) do: each is ready within the usual time, answers 503 (never 404 or 500) until then, and
 * 200 at every probe after, for longer than a circuit breaker's half-open time. Embedded (one process, every service)
 * and clustered (a gateway and a products node over NATS, each probed on its own port).
 */
import { dropScopeDatabases, isolation, nodeEnv, startNodeProcess, testNatsUrl, waitFor } from "../../support/nodes";
import { freePort } from "../../support/servers";

/**
 * `npm start` takes ~3 s on an idle machine and ~10 s on a busy 2-core runner; a tripped breaker on `health.ready`
 * made it 30 s and more (the start script's wait for readiness gives up after 30 s).
 */
const USUAL_START_S = 20;
/** Probes after the first 200 that must all be 200: longer than the breaker's half-open time (10 s). */
const PROBES_AFTER_READY = 12;
const PROBE_INTERVAL_MS = 1000;

interface Probe {
  /** Status of each probe in order; 0 when nothing answered (the port not open yet). */
  statuses: number[];
  /** Each distinct failing check a 503 named, with its error, to say why a start was slow. */
  notReadyBecause: Set<string>;
  stop(): Promise<void>;
}

/** Asks `GET /health/ready` every second until stopped. */
function probeReadiness(port: number): Probe {
  const statuses: number[] = [];
  const notReadyBecause = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const startedAt = Date.now();
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(900) });
        if (res.status === 503) {
          const body = (await res.json()) as { data: { checks: { name: string; ok: boolean; error?: string }[] } };
          for (const check of body.data.checks.filter((each) => !each.ok)) {
            notReadyBecause.add(`${check.name}: ${check.error}`);
          }
        } else await res.body?.cancel();
        statuses.push(res.status);
      } catch {
        statuses.push(0);
      }
      // The probe's own schedule, as a prober keeps it: the next one a second after this one started.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, PROBE_INTERVAL_MS - (Date.now() - startedAt))));
    }
  })();
  return {
    statuses,
    notReadyBecause,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Waits for enough probes after the first 200, then checks the whole sequence. */
async function expectReadyWithoutFlapping(probe: Probe, name: string): Promise<void> {
  await waitFor(
    async () => {
      const firstOk = probe.statuses.indexOf(200);
      return firstOk >= 0 && probe.statuses.length - firstOk > PROBES_AFTER_READY ? true : undefined;
    },
    (USUAL_START_S + PROBES_AFTER_READY + 10) * 1000,
    `${PROBES_AFTER_READY} probes of ${name} after it was ready`,
  );
  const statuses = [...probe.statuses];
  const firstOk = statuses.indexOf(200);
  expect({ name, before: statuses.slice(0, firstOk).filter((status) => status !== 0 && status !== 503) }).toEqual({
    name,
    before: [],
  });
  expect({ name, after: statuses.slice(firstOk).filter((status) => status !== 200) }).toEqual({ name, after: [] });
}

/** The node's own "Ready in" time is under the usual start time; if not, the failure says what kept it not ready. */
function expectReadyInUsualTime(output: string, probe: Probe): void {
  const match = /Ready in ([\d.]+) s/.exec(output);
  const seconds = match ? Number(match[1]) : Infinity;
  if (seconds < USUAL_START_S) return;
  const warnings = output.split("\n").filter((line) => /"level":(40|50|60)/.test(line));
  throw new Error(
    `Ready in ${seconds} s, not under ${USUAL_START_S} s. The probes' 503s said: ${[...probe.notReadyBecause].join(" | ")}\n` +
      `The node warned:\n${warnings.join("\n")}`,
  );
}

const scopes: { prefix: string }[] = [];
afterAll(async () => {
  await Promise.all(scopes.map((scope) => dropScopeDatabases(scope.prefix)));
});

it("an embedded node is ready within the usual time and stays ready", async () => {
  const scope = isolation();
  scopes.push(scope);
  const port = await freePort();
  const probe = probeReadiness(port);
  const node = await startNodeProcess(nodeEnv(scope, { PORT: String(port) }), { timeoutMs: 60_000 });
  try {
    expectReadyInUsualTime(node.output(), probe);
    await expectReadyWithoutFlapping(probe, "the embedded node");
    expect(node.output()).not.toMatch(/is not available/);
    // Not-ready answers are the probe's normal answers: none is logged as an error.
    expect(node.output()).not.toMatch(/failed: NotReadyError/);
  } finally {
    await probe.stop();
    await node.stop();
  }
});

it("a gateway and a products node in a cluster are ready within the usual time and stay ready", async () => {
  const scope = isolation();
  scopes.push(scope);
  const [gatewayPort, productsPort] = [await freePort(), await freePort()];
  const probes = [probeReadiness(gatewayPort), probeReadiness(productsPort)];
  const cluster = { TRANSPORTER: testNatsUrl() };
  const nodes = await Promise.all([
    startNodeProcess(nodeEnv(scope, { ...cluster, SERVICES: "api,auth", PORT: String(gatewayPort) }), {
      timeoutMs: 60_000,
    }),
    startNodeProcess(nodeEnv(scope, { ...cluster, SERVICES: "products", PORT: String(productsPort) }), {
      timeoutMs: 60_000,
    }),
  ]);
  try {
    nodes.forEach((node, index) => expectReadyInUsualTime(node.output(), probes[index]));
    await Promise.all([
      expectReadyWithoutFlapping(probes[0], "the gateway"),
      expectReadyWithoutFlapping(probes[1], "the products node"),
    ]);
    for (const node of nodes) expect(node.output()).not.toMatch(/is not available|failed: NotReadyError/);
  } finally {
    await Promise.all(probes.map((probe) => probe.stop()));
    await Promise.all(nodes.map((node) => node.stop()));
  }
});
