/**
 * The web console is built by `npm run build` (Vite, from `public/` into `dist/ui`). A checkout that was only
 * installed, or whose UI sources changed since the last build, gets it built when the gateway starts.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { PUBLIC_DIR, UI_DIR } from "../lib/paths";

const SOURCES = PUBLIC_DIR;
const BUILT_INDEX = path.join(UI_DIR, "index.html");

/** The newest modification time of the UI's sources (public/, without the gateway's own docs page). */
function newestSource(dir = SOURCES): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "docs" && dir === SOURCES) continue;
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

export function uiIsCurrent(): boolean {
  return existsSync(BUILT_INDEX) && statSync(BUILT_INDEX).mtimeMs >= newestSource();
}

export async function ensureUiBuilt(log: (message: string) => void): Promise<void> {
  if (uiIsCurrent()) return;
  // Vite's typings need a newer module resolution than the server's; its `build` is all this needs.
  const specifier = "vite";
  let vite: { build(options: { configFile: string; logLevel: "warn" }): Promise<unknown> };
  try {
    vite = await import(specifier);
  } catch {
    log("The web UI is not built and Vite is not installed: run `npm install` and `npm run build:ui`");
    return;
  }
  log("Building the web UI (its sources are newer than the last build)…");
  // Vite builds for the NODE_ENV it finds: under a test run's NODE_ENV=test it would ship React's development build.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = "production";
  try {
    await vite.build({ configFile: path.join(SOURCES, "vite.config.mts"), logLevel: "warn" });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
}
