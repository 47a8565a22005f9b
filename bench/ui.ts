/**
 * `npm run bench -- ui` (issue 9): the web console's weight and speed on this machine.
 * - Bundle: what the initial route loads (index.html and the assets it references), raw and gzip-compressed.
 * - Time to first render, in Debian's Chromium (playwright-core), measured in the page as `performance.now()` when the
 *   content is on screen, both in tabs that loaded the console before (warm cache): the dashboard with its figures (a
 *   signed-in tab reloaded: session restore, the dashboard API call, render) against the baseline of the same
 *   bundle's sign-in page (no session, no API call), each `BENCH_UI_RUNS` times (default 7), medians and their ratio.
 * The system is one node process as `npm start` runs it (`bin/start.ts`), on `DATABASE_URL` under a random prefix.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { launchBrowser, newPage, signIn } from "../support/browser";
import { dropScopeDatabases, startNodeProcess } from "../support/nodes";
import { ensureUiBuilt } from "../bin/ui";
import { UI_DIR } from "../lib/paths";

const ADMIN = { email: "bench@aicunet.local", password: "bench-admin-password" };

export interface UiResult {
  assets: { file: string; bytes: number; gzip: number }[];
  loginMs: number[];
  dashboardMs: number[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function initialAssets() {
  const html = await readFile(path.join(UI_DIR, "index.html"));
  const referenced = [...html.toString().matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1]);
  const files = [{ file: "index.html", body: html }];
  for (const asset of referenced) files.push({ file: asset, body: await readFile(path.join(UI_DIR, asset)) });
  return files.map(({ file, body }) => ({ file, bytes: body.length, gzip: gzipSync(body, { level: 9 }).length }));
}

export async function uiBench(databaseUrl: string): Promise<UiResult> {
  await ensureUiBuilt(console.log);
  const assets = await initialAssets();
  const runs = Number(process.env.BENCH_UI_RUNS ?? 7);
  const prefix = `bench_ui_${randomBytes(3).toString("hex")}_`;
  // One node as `npm start` runs it, on its own databases.
  const node = await startNodeProcess({
    NODE_ENV: "test",
    DATABASE_URL: databaseUrl,
    DATABASE_NAME_PREFIX: prefix,
    METRICS_PORT: "0",
    LOG_FORMAT: "json",
    TRACING_EXPORTER: "none",
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    AUTH_KEY_SECRET: randomBytes(32).toString("hex"),
    RATE_LIMIT_AUTH: "100000",
    RATE_LIMIT_IP: "100000",
  });
  const base = `http://127.0.0.1:${node.port}`;
  const browser = await launchBrowser();
  try {
    const loginMs: number[] = [];
    const dashboardMs: number[] = [];
    const viewport = { width: 1280, height: 900 };
    const signedIn = await newPage(browser, viewport);
    await signIn(signedIn, base, ADMIN.email, ADMIN.password);
    // The baseline is loaded the same way: a tab that has been here before (warm cache) but has no session.
    const anonymous = await newPage(browser, viewport);
    await anonymous.goto(`${base}/login`);
    for (let run = 0; run < runs; run++) {
      await anonymous.goto(`${base}/login`);
      await anonymous.getByRole("heading", { name: "Sign in to AiCUnet" }).waitFor();
      loginMs.push(await anonymous.evaluate(() => performance.now()));

      await signedIn.goto(`${base}/dashboard`);
      await signedIn.getByTestId("tile-Requests").waitFor();
      dashboardMs.push(await signedIn.evaluate(() => performance.now()));
    }
    return { assets, loginMs, dashboardMs };
  } finally {
    await browser.close();
    await node.stop("SIGTERM");
    await dropScopeDatabases(prefix, databaseUrl);
  }
}

export function reportUi(result: UiResult): void {
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  console.log("\nWeb console (issue 9): the initial route's files, as served from dist/ui");
  console.log("| file | bytes | gzip |\n|---|---|---|");
  for (const asset of result.assets) console.log(`| ${asset.file} | ${kb(asset.bytes)} | ${kb(asset.gzip)} |`);
  const total = (key: "bytes" | "gzip") => result.assets.reduce((sum, asset) => sum + asset[key], 0);
  console.log(`| total | ${kb(total("bytes"))} | ${kb(total("gzip"))} |`);
  const login = median(result.loginMs);
  const dashboard = median(result.dashboardMs);
  console.log(`\nTime to first render in Chromium, median of ${result.loginMs.length} (ms from navigation start):`);
  console.log(
    `sign-in page (baseline): ${login.toFixed(0)} ms  [${result.loginMs.map((v) => v.toFixed(0)).join(", ")}]`,
  );
  console.log(
    `dashboard with its figures: ${dashboard.toFixed(0)} ms  [${result.dashboardMs.map((v) => v.toFixed(0)).join(", ")}]`,
  );
  console.log(`ratio dashboard / sign-in: ${(dashboard / login).toFixed(2)}`);
}
