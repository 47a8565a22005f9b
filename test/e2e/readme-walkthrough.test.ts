/**
 * The README's walk-through, run as written: `npm start` on a fresh data directory, then the README's shell block
 * from "From a fresh clone to a completed order" with only the gateway's address and the generated password filled
 * in. It must end with the order COMPLETED, so the README cannot drift from what the system does.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { stopLeftoverPostgres } from "../../lib/embedded-postgres";
import { killLeftoverNodes, ROOT, startNodeProcess } from "../../support/nodes";
import { freePort } from "../../support/servers";

let dataDir: string;

/** The first shell block after the README heading `heading`. */
async function readmeBlock(heading: string): Promise<string> {
  const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
  const section = readme.indexOf(heading);
  const start = readme.indexOf("```sh\n", section) + "```sh\n".length;
  return readme.slice(start, readme.indexOf("```", start));
}

afterAll(async () => {
  await killLeftoverNodes();
  await stopLeftoverPostgres(dataDir);
  await rm(dataDir, { recursive: true, force: true });
});

it("takes a newcomer from a fresh start to a completed order with the README's commands", async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), "aicunet-readme-"));
  const node = await startNodeProcess(
    {
      NODE_ENV: "development",
      DATABASE_URL: "",
      TRANSPORTER: "",
      SERVICES: "",
      ADMIN_EMAIL: "",
      ADMIN_PASSWORD: "",
      DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(await freePort()),
      METRICS_PORT: "0",
      LOG_FORMAT: "json",
      TRACING_EXPORTER: "none",
    },
    { viaNpmStart: true, timeoutMs: 90_000 },
  );
  try {
    const generated = /Generated password \(shown once[^)]*\): (\S+)/.exec(node.output());
    expect(generated).not.toBeNull();
    const block = await readmeBlock("### From a fresh clone to a completed order");
    expect(block).toContain("B=http://localhost:3000");
    expect(block).toContain("GENERATED='<the password the terminal showed>'");
    const script = block
      .replace("B=http://localhost:3000", `B=http://127.0.0.1:${node.port}`)
      .replace("GENERATED='<the password the terminal showed>'", `GENERATED='${generated![1]}'`);
    const output = execFileSync("bash", ["-euo", "pipefail", "-c", script], { encoding: "utf8", timeout: 60_000 });
    const lines = output.trim().split("\n");
    // The block's last two commands: the customer's view of the status, then the saga's steps as the admin sees them.
    expect(lines.at(-2)).toBe("COMPLETED");
    expect(lines.at(-1)).toContain("shipping:ok");
  } finally {
    await node.stop("SIGINT");
  }
}, 180_000);
