/**
 * `npm test`: the type check, the linter and the unit, integration and end-to-end suites, in that order. Every step
 * runs even when an earlier one failed (a failing integration suite no longer hides the e2e suite's result); the run
 * fails when any step failed, and ends with a line per step.
 */
import { spawnSync } from "node:child_process";

const STEPS = ["typecheck", "lint", "test:unit", "test:integration", "test:e2e"];

const results = STEPS.map((step) => {
  const startedAt = performance.now();
  const { status, signal } = spawnSync("npm", ["run", "--silent", step], { stdio: "inherit" });
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(0);
  return { step, ok: status === 0, detail: status === 0 ? `${seconds} s` : `failed (${status ?? signal})` };
});

console.info("\nnpm test:");
for (const { step, ok, detail } of results) console.info(`  ${ok ? "ok  " : "FAIL"} ${step}: ${detail}`);
process.exit(results.every((result) => result.ok) ? 0 : 1);
