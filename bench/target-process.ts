/** A bench/targets.ts target as its own process, as bench/run.ts and bench/audit.ts load them. */
import { spawn } from "node:child_process";
import path from "node:path";
import { freePort } from "../support/servers";

export interface TargetProcess {
  pid: number;
  port: number;
  base: string;
  /** Sends the signal and resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts target `mode` on a free port; resolves once it says it is listening. */
export async function startTarget(mode: string, env: Record<string, string> = {}): Promise<TargetProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "targets.ts"), mode, String(port)], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("listening") && resolve());
    child.once("exit", (code) => reject(new Error(`${mode} target exited with ${code}`)));
  });
  return {
    pid: child.pid!,
    port,
    base: `http://127.0.0.1:${port}`,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
