/**
 * Rewrites README.md's configuration table from the schema in lib/config-schema.ts (`npm run docs:config`).
 * Run it after adding or changing a key; test/unit/config.test.ts fails until the README matches.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { withConfigTable } from "../lib/config-docs";

const readmePath = path.join(__dirname, "..", "README.md");
const readme = readFileSync(readmePath, "utf8");
const next = withConfigTable(readme);
if (next === readme) {
  console.log("README.md's configuration table is up to date");
} else {
  writeFileSync(readmePath, next);
  console.log("README.md's configuration table rewritten from lib/config-schema.ts");
}
