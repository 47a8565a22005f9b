/**
 * Blue/green release of production (k8s/overlays/production):
 *
 *   npm run bluegreen -- --image ghcr.io/aicunet/aicunet:1.4.0 [--namespace aicunet-prod] [--dry-run]
 *   npm run bluegreen -- --rollback [--dry-run]
 *
 * 1. reads the live colour from the `gateway` Service's selector; the other one is idle;
 * 2. runs the release's migration Job and waits for it (migrations are expand/contract: the live colour keeps working);
 * 3. applies the idle colour's Deployments, PDBs and autoscalers with the new image, and waits for every rollout;
 * 4. smoke-tests the idle colour through `gateway-preview`: ready, cluster health ok, the catalog answers;
 * 5. switches `gateway` to the idle colour and `gateway-preview` to the old one;
 * 6. checks the live entry again; if that fails, switches back (rollback) and exits non-zero.
 * A failure before the switch leaves live traffic where it was. The old colour keeps running, so `--rollback` moves
 * traffic back at once. `--dry-run` runs nothing: it prints each step and the exact objects and patches it would
 * apply (`--simulate-failure smoke|verify` shows those paths).
 */
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { parseAllDocuments, stringify } from "yaml";

type Colour = "blue" | "green";
const COLOUR_LABEL = "app.kubernetes.io/color";
const ROOT = path.join(__dirname, "..");
const OVERLAY = path.join(ROOT, "k8s", "overlays", "production");

interface Options {
  image?: string;
  namespace: string;
  dryRun: boolean;
  rollback: boolean;
  simulateFailure?: "smoke" | "verify";
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

/** What the steps need from a cluster; the dry run prints instead of acting. */
interface Cluster {
  liveColour(): Promise<Colour>;
  apply(objects: K8sObject[]): Promise<void>;
  waitForJob(name: string): Promise<void>;
  waitForRollouts(deployments: string[]): Promise<void>;
  smokeTest(service: string): Promise<void>;
  setSelector(service: string, colour: Colour): Promise<void>;
}

const other = (colour: Colour): Colour => (colour === "blue" ? "green" : "blue");
const say = (step: string, text: string) => console.log(`[${step}] ${text}`);

function parseArgs(argv: string[]): Options {
  const value = (name: string) => {
    const index = argv.indexOf(name);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const simulate = value("--simulate-failure");
  if (simulate !== undefined && simulate !== "smoke" && simulate !== "verify") {
    throw new Error("--simulate-failure takes smoke or verify");
  }
  const options: Options = {
    image: value("--image"),
    namespace: value("--namespace") ?? "aicunet-prod",
    dryRun: argv.includes("--dry-run"),
    rollback: argv.includes("--rollback"),
    simulateFailure: simulate,
  };
  if (!options.rollback && !options.image) throw new Error("--image <repository:tag> is required for a release");
  if (options.simulateFailure && !options.dryRun) throw new Error("--simulate-failure only goes with --dry-run");
  return options;
}

function render(dir: string): K8sObject[] {
  const yaml = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  return parseAllDocuments(yaml).map((doc) => doc.toJSON() as K8sObject);
}

/** The idle colour's objects with the release's image, and the release's migration Job. */
function releaseObjects(colour: Colour, image: string, namespace: string) {
  const app = render(path.join(OVERLAY, colour)).map((object) => {
    object.metadata.namespace = namespace;
    if (object.kind === "Deployment") {
      const pod = (object.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec;
      for (const container of pod.containers) container.image = image;
    }
    return object;
  });
  const tag = image
    .split(":")
    .pop()!
    .replace(/[^a-z0-9-]/gi, "-")
    .toLowerCase();
  const [job] = render(path.join(ROOT, "k8s", "base", "migrate"));
  job.metadata = { ...job.metadata, name: `migrate-${tag}`.slice(0, 63), namespace };
  const jobPod = (job.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec;
  jobPod.containers[0].image = image;
  return { app, job };
}

const deploymentsOf = (objects: K8sObject[]) =>
  objects.filter((object) => object.kind === "Deployment").map((object) => object.metadata.name);

const selectorPatch = (colour: Colour) => JSON.stringify({ spec: { selector: { [COLOUR_LABEL]: colour } } });

class DryRun implements Cluster {
  constructor(private readonly options: Options) {}

  async liveColour(): Promise<Colour> {
    const service = render(OVERLAY).find((object) => object.kind === "Service" && object.metadata.name === "gateway");
    const colour = (service?.spec?.selector as Record<string, string> | undefined)?.[COLOUR_LABEL];
    if (colour !== "blue" && colour !== "green") throw new Error("the gateway Service selects no colour");
    return colour;
  }

  async apply(objects: K8sObject[]) {
    console.log(
      `would apply (kubectl apply -n ${this.options.namespace} -f -):\n---\n${objects.map((o) => stringify(o)).join("---\n")}`,
    );
  }

  async waitForJob(name: string) {
    console.log(
      `would wait: kubectl wait -n ${this.options.namespace} --for=condition=complete --timeout=600s job/${name}`,
    );
  }

  async waitForRollouts(deployments: string[]) {
    for (const name of deployments) {
      console.log(`would wait: kubectl rollout status -n ${this.options.namespace} --timeout=300s deployment/${name}`);
    }
  }

  async smokeTest(service: string) {
    console.log(
      `would check through kubectl port-forward -n ${this.options.namespace} service/${service}: ` +
        "GET /health/ready → 200, GET /api/health → status ok, GET /api/products → 200",
    );
    if (this.options.simulateFailure === "smoke" && service === "gateway-preview") {
      throw new Error("simulated: GET /api/health answered degraded");
    }
    if (this.options.simulateFailure === "verify" && service === "gateway") {
      throw new Error("simulated: the live entry did not answer after the switch");
    }
  }

  async setSelector(service: string, colour: Colour) {
    console.log(
      `would patch: kubectl patch service ${service} -n ${this.options.namespace} --type merge -p '${selectorPatch(colour)}'`,
    );
  }
}

class Kubectl implements Cluster {
  constructor(private readonly namespace: string) {}

  private run(args: string[], input?: string): string {
    return execFileSync("kubectl", ["-n", this.namespace, ...args], { encoding: "utf8", input });
  }

  async liveColour(): Promise<Colour> {
    const jsonPath = `{.spec.selector.${COLOUR_LABEL.replace(/\./g, "\\.")}}`;
    const colour = this.run(["get", "service", "gateway", "-o", `jsonpath=${jsonPath}`]).trim();
    if (colour !== "blue" && colour !== "green") throw new Error(`the gateway Service selects colour "${colour}"`);
    return colour;
  }

  async apply(objects: K8sObject[]) {
    console.log(this.run(["apply", "-f", "-"], objects.map((o) => stringify(o)).join("---\n")));
  }

  async waitForJob(name: string) {
    this.run(["wait", "--for=condition=complete", "--timeout=600s", `job/${name}`]);
  }

  async waitForRollouts(deployments: string[]) {
    for (const name of deployments) this.run(["rollout", "status", "--timeout=300s", `deployment/${name}`]);
  }

  async smokeTest(service: string) {
    const port = 18_000 + Math.floor(Math.random() * 1000);
    const forward = spawn("kubectl", ["-n", this.namespace, "port-forward", `service/${service}`, `${port}:80`]);
    try {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const base = `http://127.0.0.1:${port}`;
      const ready = await fetch(`${base}/health/ready`);
      if (!ready.ok) throw new Error(`GET /health/ready answered ${ready.status}`);
      const health = (await (await fetch(`${base}/api/health`)).json()) as { status: string };
      if (health.status !== "ok") throw new Error(`GET /api/health answered ${health.status}`);
      const catalog = await fetch(`${base}/api/products`);
      if (!catalog.ok) throw new Error(`GET /api/products answered ${catalog.status}`);
    } finally {
      forward.kill();
    }
  }

  async setSelector(service: string, colour: Colour) {
    this.run(["patch", "service", service, "--type", "merge", "-p", selectorPatch(colour)]);
  }
}

async function release(cluster: Cluster, options: Options): Promise<void> {
  const live = await cluster.liveColour();
  const idle = other(live);
  say("1/6", `live colour: ${live}; releasing ${options.image} to ${idle}`);
  const { app, job } = releaseObjects(idle, options.image!, options.namespace);

  say("2/6", `migration Job ${job.metadata.name}`);
  await cluster.apply([job]);
  await cluster.waitForJob(job.metadata.name);

  say("3/6", `deploy ${idle}: ${deploymentsOf(app).join(", ")}`);
  await cluster.apply(app);
  await cluster.waitForRollouts(deploymentsOf(app));

  say("4/6", `smoke test ${idle} through gateway-preview`);
  try {
    await cluster.smokeTest("gateway-preview");
  } catch (err) {
    say(
      "4/6",
      `smoke test failed: ${(err as Error).message}; traffic stays on ${live}, ${idle} is left for inspection`,
    );
    throw err;
  }

  say("5/6", `switch: gateway → ${idle}, gateway-preview → ${live}`);
  await cluster.setSelector("gateway", idle);
  await cluster.setSelector("gateway-preview", live);

  say("6/6", "check the live entry");
  try {
    await cluster.smokeTest("gateway");
  } catch (err) {
    say("6/6", `failed after the switch: ${(err as Error).message}; rolling back to ${live}`);
    await cluster.setSelector("gateway", live);
    await cluster.setSelector("gateway-preview", idle);
    throw err;
  }
  say("done", `${idle} is live; ${live} keeps running for a rollback: npm run bluegreen -- --rollback`);
}

async function rollback(cluster: Cluster): Promise<void> {
  const live = await cluster.liveColour();
  const previous = other(live);
  say("rollback", `switch: gateway → ${previous}, gateway-preview → ${live}`);
  await cluster.setSelector("gateway", previous);
  await cluster.setSelector("gateway-preview", live);
  say("done", `${previous} is live again`);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const cluster = options.dryRun ? new DryRun(options) : new Kubectl(options.namespace);
  if (options.dryRun) say("dry run", "nothing is applied; each step prints what it would do");
  if (options.rollback) await rollback(cluster);
  else await release(cluster, options);
}

main().catch((err) => {
  console.error(`bluegreen: ${(err as Error).message}`);
  process.exit(1);
});
