/**
 * Delivery, checked without a container engine or a cluster (neither exists here): every kustomize overlay renders
 * (kubectl's built-in kustomize) and every object validates against the Kubernetes schemas (kubernetes-models; the
 * custom resources it cannot know are listed); the probes point at paths and the port a real node of each role serves;
 * the workflows (action-validator), the Dockerfile (dockerfilelint) and the compose file (docker-compose config) pass
 * their linters; the roles cover every service once; the blue/green script's dry run shows the release, the switch
 * and the rollbacks.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { DOCKER_COMPOSE, KUBECTL, describeWithTool, itWithTool, toolInstalled } from "../support/tools";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { SERVICE_NAMES } from "../../lib/config";
import { dropScopeDatabases, isolation, nodeEnv, ROOT, startNodeProcess, testNatsUrl } from "../../support/nodes";

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports: { name: string; containerPort: number }[];
  startupProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  securityContext?: { runAsNonRoot?: boolean };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean };
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string }[] } }[];
}

interface PeerRule {
  podSelector?: {
    matchLabels?: Record<string, string>;
    matchExpressions?: { key: string; operator: string; values: string[] }[];
  };
}

/** The app roles, by the component label of their Deployments; every one but the gateway keeps data. */
const ROLES = ["gateway", "identity", "commerce", "workflow", "providers", "operations"];

const OVERLAYS = ["k8s/overlays/staging", "k8s/overlays/production", "k8s/base/migrate"];
const scope = isolation();

function render(dir: string): K8sObject[] {
  const yaml = execFileSync("kubectl", ["kustomize", path.join(ROOT, dir)], { encoding: "utf8" });
  return parseAllDocuments(yaml).map((doc) => doc.toJSON() as K8sObject);
}

/** kubernetes-models' class for an object's apiVersion and kind, or undefined for a custom resource. */
function modelOf(object: K8sObject): (new (data: object) => { validate(): void }) | undefined {
  const [group, version] = object.apiVersion.includes("/") ? object.apiVersion.split("/") : ["", object.apiVersion];
  const modulePath = path.join("kubernetes-models", group, version, object.kind);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module is chosen by the object's kind
    return (require(modulePath) as Record<string, new (data: object) => { validate(): void }>)[object.kind];
  } catch {
    return undefined;
  }
}

const containerOf = (deployment: K8sObject) =>
  (deployment.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers[0];
const servicesOf = (deployment: K8sObject) =>
  containerOf(deployment).env?.find((entry) => entry.name === "SERVICES")?.value ?? "";

const run = (command: string, args: string[]) =>
  spawnSync(command, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0" } });
const bin = (name: string) => path.join(ROOT, "node_modules", ".bin", name);

describeWithTool(KUBECTL)("Kubernetes manifests", () => {
  // A skipped block's body still runs to collect its tests: render only where kubectl is there to do it.
  const rendered = toolInstalled(KUBECTL) ? Object.fromEntries(OVERLAYS.map((dir) => [dir, render(dir)])) : {};

  it("render for every overlay, and every object validates against its schema but the listed custom resources", () => {
    const unchecked: string[] = [];
    for (const [dir, objects] of Object.entries(rendered)) {
      expect(objects.length).toBeGreaterThan(0);
      for (const object of objects) {
        const Model = modelOf(object);
        if (!Model) {
          unchecked.push(`${dir}: ${object.apiVersion} ${object.kind} ${object.metadata.name}`);
          continue;
        }
        expect(() => new Model(object).validate()).not.toThrow();
      }
    }
    expect(unchecked).toEqual([
      "k8s/overlays/staging: postgresql.cnpg.io/v1 Cluster aicunet-pg",
      "k8s/overlays/production: postgresql.cnpg.io/v1 Cluster aicunet-pg",
    ]);
  });

  it("deploys every service in exactly one role, staging and both production colours alike", () => {
    const roles = (objects: K8sObject[], suffix = "") =>
      objects
        .filter((object) => object.kind === "Deployment" && object.metadata.name.endsWith(suffix))
        .flatMap((deployment) => servicesOf(deployment).split(","))
        .filter(Boolean)
        .sort();
    const everyService = SERVICE_NAMES.filter(Boolean).slice().sort();
    expect(roles(rendered["k8s/overlays/staging"])).toEqual(everyService);
    expect(roles(rendered["k8s/overlays/production"], "-blue")).toEqual(everyService);
    expect(roles(rendered["k8s/overlays/production"], "-green")).toEqual(everyService);
  });

  it("gives production's colours their own labels and Moleculer namespaces, and the live Service one colour", () => {
    const objects = rendered["k8s/overlays/production"];
    const gateway = objects.find((object) => object.kind === "Service" && object.metadata.name === "gateway")!;
    const preview = objects.find((object) => object.kind === "Service" && object.metadata.name === "gateway-preview")!;
    expect((gateway.spec!.selector as Record<string, string>)["app.kubernetes.io/color"]).toBe("blue");
    expect((preview.spec!.selector as Record<string, string>)["app.kubernetes.io/color"]).toBe("green");
    for (const colour of ["blue", "green"]) {
      const deployments = objects.filter((o) => o.kind === "Deployment" && o.metadata.name.endsWith(`-${colour}`));
      expect(deployments).toHaveLength(6);
      for (const deployment of deployments) {
        expect(deployment.metadata.labels?.["app.kubernetes.io/color"]).toBe(colour);
        expect(containerOf(deployment).env).toContainEqual({ name: "NAMESPACE", value: `aicunet-${colour}` });
      }
    }
  });

  it("denies ingress by default and lets only the gateway be reached from anywhere", () => {
    for (const overlay of ["k8s/overlays/staging", "k8s/overlays/production"]) {
      const policies = rendered[overlay].filter((object) => object.kind === "NetworkPolicy");
      const spec = (name: string) => policies.find((policy) => policy.metadata.name === name)?.spec;
      expect(spec("default-deny-ingress")).toEqual({ podSelector: {}, policyTypes: ["Ingress"] });
      // A rule without `from` admits any source: only the gateway's pods may have one.
      const openToAll = policies.filter((policy) =>
        ((policy.spec!.ingress as { from?: unknown }[] | undefined) ?? []).some((rule) => !rule.from),
      );
      expect(openToAll.map((policy) => policy.spec!.podSelector)).toEqual([
        { matchLabels: expect.objectContaining({ "app.kubernetes.io/component": "gateway" }) },
      ]);
    }
  });

  it("runs NATS as a three-node JetStream cluster whose streams the platform creates with three replicas", () => {
    for (const overlay of ["k8s/overlays/staging", "k8s/overlays/production"]) {
      const objects = rendered[overlay];
      const nats = objects.find((object) => object.kind === "StatefulSet" && object.metadata.name === "nats")!;
      expect((nats.spec as { replicas: number }).replicas).toBe(3);
      const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "aicunet-config")!;
      expect(config.data!.JETSTREAM_REPLICAS).toBe("3");
    }
  });

  it("gives every container a liveness probe and runs every pod as non-root", () => {
    for (const overlay of ["k8s/overlays/staging", "k8s/overlays/production"]) {
      const workloads = rendered[overlay].filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet");
      expect(workloads.map((o) => o.metadata.name)).toEqual(expect.arrayContaining(["nats", "redis"]));
      for (const workload of workloads) {
        const pod = (workload.spec as { template: { spec: PodSpec } }).template.spec;
        for (const container of pod.containers) {
          const where = `${overlay} ${workload.metadata.name}/${container.name}`;
          expect([where, Boolean(container.livenessProbe)]).toEqual([where, true]);
          const nonRoot = container.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
          expect([where, nonRoot]).toEqual([where, true]);
        }
      }
    }
  });

  it("gives each role a Secret of its own, and the gateway no database, signing-key or admin secret", () => {
    for (const overlay of ["k8s/overlays/staging", "k8s/overlays/production"]) {
      const deployments = rendered[overlay].filter((o) => o.kind === "Deployment" && servicesOf(o));
      expect(deployments.length).toBeGreaterThanOrEqual(ROLES.length);
      for (const deployment of deployments) {
        const role = deployment.metadata.labels!["app.kubernetes.io/component"];
        const container = containerOf(deployment);
        const secrets = [
          ...(container.envFrom ?? []).flatMap((source) => (source.secretRef ? [source.secretRef.name] : [])),
          ...(container.env ?? []).flatMap((entry) => entry.valueFrom?.secretKeyRef?.name ?? []),
        ];
        expect([deployment.metadata.name, secrets]).toEqual([deployment.metadata.name, [`aicunet-${role}`]]);
        if (role === "gateway") {
          const named = (container.env ?? []).map((entry) => entry.name);
          for (const key of ["DATABASE_URL", "DATABASE_REPLICA_URL", "AUTH_KEY_SECRET", "ADMIN_PASSWORD"]) {
            expect(named).not.toContain(key);
          }
        }
      }
      const migrate = render("k8s/base/migrate")[0];
      const job = (migrate.spec as { template: { spec: PodSpec } }).template.spec.containers[0];
      expect(job.envFrom).toContainEqual({ secretRef: { name: "aicunet-migrate" } });
    }
  });

  it("joins every role to NATS over TLS as its own user and claim role, and NATS requires both", () => {
    for (const overlay of ["k8s/overlays/staging", "k8s/overlays/production"]) {
      const objects = rendered[overlay];
      const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "aicunet-config")!;
      expect(config.data!.NATS_TLS_CA).toBe("/etc/nats-ca/ca.crt");
      for (const deployment of objects.filter((o) => o.kind === "Deployment" && servicesOf(o))) {
        const role = deployment.metadata.labels!["app.kubernetes.io/component"];
        const container = containerOf(deployment);
        expect(container.env).toEqual(
          expect.arrayContaining([
            { name: "NATS_USER", value: role },
            { name: "BUS_ROLE", value: role },
          ]),
        );
        expect(container.envFrom).toContainEqual({ configMapRef: { name: "aicunet-bus-trust" } });
        expect(container.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: "/etc/nats-ca" }));
        const pod = (deployment.spec as { template: { spec: PodSpec } }).template.spec;
        // Only the CA: no role holds the NATS server's private key.
        expect(pod.volumes).toContainEqual({
          name: "nats-ca",
          secret: { secretName: "nats-tls", items: [{ key: "ca.crt", path: "ca.crt" }] },
        });
      }
      const natsConfig = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "nats-config")!;
      expect(natsConfig.data!["nats.conf"]).toMatch(/include \.\/authorization\.conf/);
      expect(natsConfig.data!["nats.conf"]).toMatch(/^tls \{/m);
      const authorization = objects.find(
        (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("nats-authorization-"),
      )!;
      const file = readFileSync(path.join(ROOT, "k8s/base/platform/nats-authorization.conf"), "utf8");
      expect(authorization.data!["authorization.conf"]).toBe(file);
      for (const role of ROLES) expect(file).toContain(`user: ${role}, password: $NATS_${role.toUpperCase()}_PASSWORD`);
    }
  });

  it("has an authorization config that nats-server accepts", () => {
    const env = Object.fromEntries(ROLES.map((role) => [`NATS_${role.toUpperCase()}_PASSWORD`, "checked"]));
    const result = spawnSync("nats-server", ["-t", "-c", "k8s/base/platform/nats-authorization.conf"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, ...env },
    });
    expect([result.status, result.stdout + result.stderr]).toEqual([0, expect.stringContaining("is valid")]);
  });

  it("lets only the bus roles reach NATS, and keeps the gateway away from PostgreSQL", () => {
    for (const overlay of ["k8s/overlays/staging", "k8s/overlays/production"]) {
      const policies = rendered[overlay].filter((object) => object.kind === "NetworkPolicy");
      /**
       * Who a policy admits on `port`: the components it names; a peer in another namespace as "(namespace)"; a pod
       * selector without a component by its label keys ("app.kubernetes.io/part-of" alone: any of the app's pods).
       */
      const admitted = (name: string, port: number) => {
        const policy = policies.find((candidate) => candidate.metadata.name === name)!;
        const rules = policy.spec!.ingress as {
          from: (PeerRule & { namespaceSelector?: object })[];
          ports?: { port: number }[];
        }[];
        return rules
          .filter((rule) => !rule.ports || rule.ports.some((allowed) => allowed.port === port))
          .flatMap((rule) =>
            rule.from.flatMap((peer) => {
              if (peer.namespaceSelector) return ["(namespace)"];
              const named = peer.podSelector?.matchExpressions?.find((e) => e.key === "app.kubernetes.io/component");
              const labels = peer.podSelector?.matchLabels ?? {};
              if (named) return named.values;
              return [labels["app.kubernetes.io/component"] ?? Object.keys(labels).join(",")];
            }),
          );
      };
      expect(admitted("nats-from-roles", 4222)).toEqual(ROLES);
      // The roles that keep data and the migration job; the operator and the instances themselves.
      expect(admitted("postgres-from-roles", 5432)).toEqual([
        ...ROLES.filter((role) => role !== "gateway"),
        "migrate",
        "(namespace)",
        "cnpg.io/cluster",
      ]);
      expect(admitted("redis-from-gateway", 6379)).toEqual(["gateway"]);
    }
  });

  it("probes paths and a port that a real node of each role serves", async () => {
    const objects = rendered["k8s/overlays/staging"];
    const config = objects.find((object) => object.kind === "ConfigMap" && object.metadata.name === "aicunet-config")!;
    for (const deployment of objects.filter((object) => object.kind === "Deployment" && servicesOf(object))) {
      const container = containerOf(deployment);
      const http = container.ports.find((port) => port.name === "http")!;
      expect(String(http.containerPort)).toBe(config.data!.PORT);
      const probes = [container.startupProbe, container.livenessProbe, container.readinessProbe];
      expect(probes.map((probe) => probe.httpGet.port)).toEqual(["http", "http", "http"]);
      // The role as it runs: its services, its PORT; every probe path answers 200 once it is ready.
      const node = await startNodeProcess(
        nodeEnv(scope, {
          SERVICES: servicesOf(deployment),
          TRANSPORTER: testNatsUrl(),
          NODE_ID: deployment.metadata.name,
        }),
      );
      try {
        for (const probe of probes) {
          const res = await fetch(`http://127.0.0.1:${node.port}${probe.httpGet.path}`);
          expect([deployment.metadata.name, probe.httpGet.path, res.status]).toEqual([
            deployment.metadata.name,
            probe.httpGet.path,
            200,
          ]);
        }
      } finally {
        await node.stop("SIGTERM");
      }
    }
  }, 180_000);

  afterAll(() => dropScopeDatabases(scope.prefix));
});

describe("pipeline, image and compose files", () => {
  it("passes the workflow linter", () => {
    for (const file of [".github/workflows/ci.yml", ".github/workflows/deploy.yml"]) {
      const result = run(bin("action-validator"), [file]);
      expect([file, result.status, result.stdout + result.stderr]).toEqual([file, 0, ""]);
    }
  });

  it("passes the Dockerfile linter, and the image runs the compiled server as a non-root user", () => {
    const result = run(bin("dockerfilelint"), ["Dockerfile"]);
    expect(result.stdout).toContain("Issues: None found");
    const dockerfile = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/bin\/start.js"\]$/m);
  });

  itWithTool(DOCKER_COMPOSE)("has a compose file that docker-compose accepts, with one container per role", () => {
    const result = run("docker-compose", ["-f", "docker-compose.yml", "config", "-q"]);
    expect(result.error).toBeUndefined();
    // Required secrets are refused when missing, and accepted when given.
    expect(result.status).not.toBe(0);
    const given = spawnSync("docker-compose", ["-f", "docker-compose.yml", "config"], {
      cwd: ROOT,
      encoding: "utf8",
      env: {
        ...process.env,
        AUTH_KEY_SECRET: "x".repeat(32),
        AUDIT_ANCHOR_KEY: "y".repeat(32),
        ADMIN_PASSWORD: "a-long-enough-password",
        BUS_TRUSTED_KEYS: "checked",
        ...Object.fromEntries(
          ROLES.flatMap((role) => [
            [`NATS_${role.toUpperCase()}_PASSWORD`, "checked"],
            [`BUS_${role.toUpperCase()}_KEY`, "checked"],
          ]),
        ),
      },
    });
    expect(given.status).toBe(0);
    const compose = parse(given.stdout) as { services: Record<string, { environment?: Record<string, string> }> };
    const services = Object.values(compose.services)
      .flatMap((service) => (service.environment?.SERVICES ?? "").split(","))
      .filter(Boolean)
      .sort();
    expect(services).toEqual([...SERVICE_NAMES].sort());
    // Two gateway replicas behind one port: only the load balancer publishes it, and it proxies to the gateways.
    const { gateway, "gateway-lb": balancer } = compose.services as Record<
      string,
      { deploy?: { replicas?: number }; ports?: unknown[]; volumes?: (string | { source?: string })[] }
    >;
    expect(gateway.deploy?.replicas).toBe(2);
    expect(gateway.ports ?? []).toEqual([]);
    expect(JSON.stringify(balancer.ports)).toContain("3000");
    const nginx = readFileSync(path.join(ROOT, "deploy/nginx/gateway.conf"), "utf8");
    expect(nginx).toMatch(/server gateway:3000;/);
    expect(nginx).toMatch(/proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/);
  });
});

describe("compose file's bus", () => {
  // Read as written (anchors merged), so it is checked without docker-compose too.
  const compose = parse(readFileSync(path.join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; command?: string[]; volumes?: string[] }>;
  };

  it("gives each role only its own secrets: the gateway no database, signing-key or admin secret", () => {
    for (const role of ROLES) {
      const env = compose.services[role].environment!;
      expect([role, env.NATS_USER, env.BUS_ROLE]).toEqual([role, role, role]);
      expect(env.NATS_PASSWORD).toBe(`\${NATS_${role.toUpperCase()}_PASSWORD:?}`);
      expect(env.BUS_SIGNING_KEY).toBe(`\${BUS_${role.toUpperCase()}_KEY:?}`);
      expect(env.NATS_TLS_CA).toBe("/etc/nats-ca/ca.crt");
      const holds = (key: string) => Object.prototype.hasOwnProperty.call(env, key);
      expect([role, holds("AUTH_KEY_SECRET"), holds("ADMIN_PASSWORD")]).toEqual([
        role,
        role === "identity",
        role === "identity",
      ]);
      expect([role, holds("DATABASE_URL")]).toEqual([role, role !== "gateway"]);
    }
  });

  it("runs NATS with the deployments' users, permissions and TLS", () => {
    const nats = compose.services.nats;
    expect(nats.command).toEqual(expect.arrayContaining(["-c", "/etc/nats/nats.conf"]));
    expect(nats.volumes).toEqual(
      expect.arrayContaining([
        "./k8s/base/platform/nats-authorization.conf:/etc/nats/authorization.conf:ro",
        "./deploy/nats/nats.conf:/etc/nats/nats.conf:ro",
      ]),
    );
    const conf = readFileSync(path.join(ROOT, "deploy/nats/nats.conf"), "utf8");
    expect(conf).toMatch(/include \.\/authorization\.conf/);
    expect(conf).toMatch(/^tls \{/m);
    for (const role of ROLES) expect(Object.keys(nats.environment!)).toContain(`NATS_${role.toUpperCase()}_PASSWORD`);
  });
});

describeWithTool(KUBECTL)("blue/green script (dry run)", () => {
  const bluegreen = (...args: string[]) =>
    run(process.execPath, ["--import", "tsx", "scripts/bluegreen.ts", "--dry-run", ...args]);

  it("migrates, deploys the idle colour with the new image, smoke-tests it, then switches both Services", () => {
    const result = bluegreen("--image", "ghcr.io/aicunet/aicunet:1.2.3");
    expect(result.status).toBe(0);
    const out = result.stdout;
    expect(out).toContain("[1/6] live colour: blue; releasing ghcr.io/aicunet/aicunet:1.2.3 to green");
    expect(out).toContain("job/migrate-1-2-3");
    expect(out).toContain("name: gateway-green");
    expect(out).toContain("image: ghcr.io/aicunet/aicunet:1.2.3");
    expect(out).not.toContain("name: gateway-blue");
    const steps = out.split("\n").filter((line) => line.startsWith("[") || line.startsWith("would patch"));
    expect(steps.slice(-5)).toEqual([
      "[5/6] switch: gateway → green, gateway-preview → blue",
      `would patch: kubectl patch service gateway -n aicunet-prod --type merge -p '{"spec":{"selector":{"app.kubernetes.io/color":"green"}}}'`,
      `would patch: kubectl patch service gateway-preview -n aicunet-prod --type merge -p '{"spec":{"selector":{"app.kubernetes.io/color":"blue"}}}'`,
      "[6/6] check the live entry",
      "[done] green is live; blue keeps running for a rollback: npm run bluegreen -- --rollback",
    ]);
  });

  it("leaves traffic where it was when the smoke test fails", () => {
    const result = bluegreen("--image", "ghcr.io/aicunet/aicunet:1.2.3", "--simulate-failure", "smoke");
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(
      "smoke test failed: simulated: GET /api/health answered degraded; traffic stays on blue",
    );
    expect(result.stdout).not.toContain("kubectl patch service");
  });

  it("switches back when the live entry fails after the switch, and rolls back on request", () => {
    const failed = bluegreen("--image", "ghcr.io/aicunet/aicunet:1.2.3", "--simulate-failure", "verify");
    expect(failed.status).toBe(1);
    const patches = failed.stdout.split("\n").filter((line) => line.startsWith("would patch"));
    expect(patches.map((line) => /service (\S+) .*color":"(\w+)"/.exec(line)!.slice(1).join("→"))).toEqual([
      "gateway→green",
      "gateway-preview→blue",
      "gateway→blue",
      "gateway-preview→green",
    ]);
    const rollback = bluegreen("--rollback");
    expect(rollback.status).toBe(0);
    expect(rollback.stdout).toContain("[rollback] switch: gateway → green, gateway-preview → blue");
  });
});
