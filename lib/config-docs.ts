/**
 * The README's configuration table, generated from `CONFIG_SCHEMA` so the documentation cannot drift from what
 * `loadConfig` does. `npm run docs:config` rewrites it; a unit test fails when README.md is out of date.
 */
import { CONFIG_KEYS } from "./config";

export const TABLE_START = "<!-- config-table:start";
export const TABLE_END = "<!-- config-table:end -->";

/** A table cell: a `|` would end the cell early, even inside backticks. */
const cell = (text: string): string => text.replaceAll("|", "\\|");

/** The markdown table of every documented key, one row per key in the schema's order. */
export function configTable(): string {
  const rows = CONFIG_KEYS.map((key) => `| \`${cell(key.key)}\` | ${cell(key.default)} | ${cell(key.description)} |`);
  return ["| key | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

/** The lines between the README's start and end markers, or an error saying which marker is missing. */
export function tableIn(readme: string): { before: string; table: string; after: string } {
  const start = readme.indexOf(TABLE_START);
  const startLineEnd = readme.indexOf("\n", start);
  const end = readme.indexOf(TABLE_END, startLineEnd);
  if (start < 0 || startLineEnd < 0 || end < 0) {
    throw new Error(`README.md needs the lines "${TABLE_START} ... -->" and "${TABLE_END}" around the table`);
  }
  return {
    before: readme.slice(0, startLineEnd + 1),
    table: readme.slice(startLineEnd + 1, end).trimEnd(),
    after: readme.slice(end),
  };
}

/** `readme` with the generated table between its markers. */
export function withConfigTable(readme: string): string {
  const { before, after } = tableIn(readme);
  return `${before}${configTable()}\n${after}`;
}
