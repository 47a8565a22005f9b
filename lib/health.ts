/** Readiness checks: each timed, none throwing, and which of a node's failed. */
import type { ReadinessCheck } from "../contracts/health";

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
