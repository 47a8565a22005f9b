/** Readiness as plain data: what each node reports about its dependencies, and how the gateway sums a cluster. */

export interface ReadinessCheck {
  /** What was checked, e.g. `database:products` or `transporter`. */
  name: string;
  ok: boolean;
  latencyMs: number;
  /** Why it failed; never a credential. */
  error?: string;
}

export interface NodeReadiness {
  nodeID: string;
  ready: boolean;
  services: string[];
  checks: ReadinessCheck[];
  uptimeSeconds: number;
}

/** Runs one check and times it; a thrown error or a timeout is a failed check, never an exception. */
export async function timedCheck(
  name: string,
  probe: () => Promise<unknown>,
  timeoutMs = 2000,
): Promise<ReadinessCheck> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { name, ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    return { name, ok: false, latencyMs: Math.round(performance.now() - started), error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export function failingChecks(checks: ReadinessCheck[]): string[] {
  return checks.filter((check) => !check.ok).map((check) => check.name);
}
