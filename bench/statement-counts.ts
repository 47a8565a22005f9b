/** What bench/count-statements.ts, preloaded in a node process, answers on its IPC channel. */
export interface StatementCounts {
  /** Every `Client.prototype.query` call of the process since it started. */
  statements: number;
  /** Of which BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE. */
  transactionControl: number;
  /** Of which COMMIT or END: the explicit transactions the process committed (autocommit statements not among them). */
  explicitCommits: number;
}

/** The IPC message that asks a node for its `StatementCounts`. */
export const STATEMENT_COUNT_REQUEST = "bench:statement-counts";
