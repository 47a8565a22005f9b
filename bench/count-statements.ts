/**
 * Preloaded by the saga bench into each node process (`node --import tsx --import <this file> bin/start.ts`): counts
 * every statement the process sends to PostgreSQL, and answers the bench's `STATEMENT_COUNT_REQUEST` on the IPC
 * channel with the totals so far.
 *
 * It wraps `Client.prototype.query` of `pg` because every path to the server goes through it: the services' raw `pg`
 * pools, Sequelize's postgres dialect (it requires the same `pg` and calls `query` on its connections), LISTEN and the
 * outbox relays. PostgreSQL itself cannot give the count here: `pg_stat_statements` is not preloaded on the bench's
 * servers, and `pg_stat_database` counts transactions and tuples, not statements.
 * One call is one statement, as the issue counts them; a simple-protocol string holding several statements would
 * count once (the services send none). BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE are counted apart as well, so that
 * a change that merges transactions shows in both figures.
 * With `BENCH_STATEMENT_LOG=<dir>`, the process also writes, when it exits, how often it sent each statement (its
 * text with whitespace collapsed) to `<dir>/statements-<NODE_ID>.json`: which statements a saga's count is made of.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isMainThread } from "node:worker_threads";
import { Client } from "pg";
import { STATEMENT_COUNT_REQUEST, type StatementCounts } from "./statement-counts";

const TRANSACTION_CONTROL = /^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i;

const COMMIT = /^\s*(COMMIT|END)\b/i;

const counts: StatementCounts = { statements: 0, transactionControl: 0, explicitCommits: 0 };
const logDir = process.env.BENCH_STATEMENT_LOG;
const byText = new Map<string, number>();

function textOf(config: unknown): string {
  if (typeof config === "string") return config;
  if (config && typeof config === "object" && "text" in config && typeof config.text === "string") return config.text;
  return "";
}

const query = Client.prototype.query as (this: Client, ...args: unknown[]) => unknown;
Client.prototype.query = function countedQuery(this: Client, ...args: unknown[]) {
  counts.statements += 1;
  const text = textOf(args[0]);
  if (TRANSACTION_CONTROL.test(text)) counts.transactionControl += 1;
  if (COMMIT.test(text)) counts.explicitCommits += 1;
  if (logDir) {
    const key = text.replace(/\s+/g, " ").trim().slice(0, 200);
    byText.set(key, (byText.get(key) ?? 0) + 1);
  }
  return query.apply(this, args);
} as typeof Client.prototype.query;

process.on("message", (message) => {
  if (message === STATEMENT_COUNT_REQUEST) process.send?.({ ...counts });
});
// Preloads run in worker threads too (the logger's transport): only the node's main thread sends statements, and a
// worker's empty file written last would replace its log.
if (logDir && isMainThread) {
  process.on("exit", () => {
    mkdirSync(logDir, { recursive: true });
    const sorted = Object.fromEntries([...byText].sort((a, b) => b[1] - a[1]));
    writeFileSync(
      path.join(logDir, `statements-${process.env.NODE_ID ?? process.pid}.json`),
      JSON.stringify(sorted, null, 1),
    );
  });
}
// The listener refs the IPC channel; the node must still exit on its own once its broker has stopped.
process.channel?.unref();
