/**
 * The README's path where most containers and CI runners take it: as root, in a checkout under a private (0700)
 * directory, `npm start` with the default paths (`.data` in the checkout). As root the embedded PostgreSQL runs as
 * the `postgres` user, which cannot reach that directory, so its cluster lives under /var/tmp behind a link in `.data`.
 * A port taken by another server ends the start with what to do, not pg_ctl's "Examine the log output".
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readlink, rm, stat, symlink } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { stopLeftoverPostgres } from "../../lib/embedded-postgres";
import { json, killLeftoverNodes, ROOT, startNodeProcess } from "../../support/nodes";
import { freePort } from "../../support/servers";

const asRoot = process.getuid?.() === 0;
let privateDir: string;
let checkout: string;

/** The checkout's files as they are now (committed or not), without what `npm install` and a start make. */
async function copyCheckout(to: string): Promise<void> {
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: ROOT,
    encoding: "utf8",
  })
    .split("\0")
    .filter(Boolean);
  for (const file of files) {
    const exists = await stat(path.join(ROOT, file)).then(
      () => true,
      () => false,
    );
    if (!exists) continue; // deleted in the working tree
    await mkdir(path.dirname(path.join(to, file)), { recursive: true });
    await copyFile(path.join(ROOT, file), path.join(to, file));
  }
  // `npm install` is not what this test is about: the checkout's own packages stand in for it.
  await symlink(path.join(ROOT, "node_modules"), path.join(to, "node_modules"));
}

beforeAll(async () => {
  privateDir = await mkdtemp(path.join(tmpdir(), "aicunet-private-"));
  checkout = path.join(privateDir, "main");
  await copyCheckout(checkout);
});

afterAll(async () => {
  await killLeftoverNodes();
  const dataDir = path.join(checkout, ".data");
  await stopLeftoverPostgres(dataDir);
  const outside = await readlink(path.join(dataDir, "postgres")).catch(() => undefined);
  if (outside) await rm(outside, { recursive: true, force: true });
  if (outside) await rm(`${outside}.log`, { force: true });
  await rm(privateDir, { recursive: true, force: true });
});

(asRoot ? it : it.skip)(
  "as root in a 0700 directory, npm start runs on the default paths and stops on Ctrl-C",
  async () => {
    expect((await stat(privateDir)).mode & 0o777).toBe(0o700);
    const env = {
      NODE_ENV: "development",
      DATABASE_URL: "",
      DATA_DIR: "",
      TRANSPORTER: "",
      SERVICES: "",
      // The default port may be another test's; the paths are what this test is about.
      EMBEDDED_PG_PORT: String(await freePort()),
      METRICS_PORT: "0",
      LOG_FORMAT: "json",
      TRACING_EXPORTER: "none",
    };
    const node = await startNodeProcess(env, { viaNpmStart: true, cwd: checkout, timeoutMs: 120_000 });
    const ready = await fetch(`http://127.0.0.1:${node.port}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await json<{ ready: boolean }>(ready)).toMatchObject({ ready: true });
    expect(await readlink(path.join(checkout, ".data", "postgres"))).toMatch(/^\/var\/tmp\/aicunet-postgres\//);
    await node.stop("SIGINT");
    expect(node.output()).toContain("Embedded PostgreSQL stopped");
    expect(node.output()).not.toContain("EACCES");
  },
  180_000,
);

it("says which port is taken and how to choose another when the embedded PostgreSQL's port is busy", async () => {
  const port = await freePort();
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
  const dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-port-"));
  try {
    const child = spawn(process.execPath, ["--import", "tsx", "bin/start.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: "development",
        DATABASE_URL: "",
        TRANSPORTER: "",
        DATA_DIR: dataDir,
        EMBEDDED_PG_PORT: String(port),
        PORT: String(await freePort()),
        METRICS_PORT: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    expect(code).toBe(1);
    expect(output).toContain(`Port ${port} on 127.0.0.1, which the embedded PostgreSQL uses, is taken`);
    expect(output).toContain(`EMBEDDED_PG_PORT=${port + 1} npm start`);
    expect(output).not.toMatch(/^\s+at /m); // the reason, not a stack trace
  } finally {
    await stopLeftoverPostgres(dataDir);
    await rm(dataDir, { recursive: true, force: true });
    await new Promise((resolve) => blocker.close(resolve));
  }
}, 120_000);
