/**
 * The dlq service's rows (dead letters, replays, replay operations) as its database holds them, and as the contracts
 * (contracts/dead-letters.ts) give them to clients.
 */
import type {
  DeadLetter,
  DeadLetterFailure,
  DeadLetterStatus,
  ErrorRecord,
  Replay,
  ReplayOperation,
  ReplayOutcome,
  ReplaySelection,
  ReplayState,
} from "../contracts/dead-letters";

export interface DeadLetterRow {
  id: string;
  channel: string;
  consumer_group: string;
  message_id: string | null;
  message: unknown;
  replayable: boolean;
  status: DeadLetterStatus;
  attempts: number;
  error: ErrorRecord;
  failures: DeadLetterFailure[];
  correlation_id: string | null;
  replay_count: number;
  last_replayed_at: Date | null;
  last_replayed_by: string | null;
  resolved_at: Date | null;
  discarded_at: Date | null;
  discarded_by: string | null;
  discard_reason: string | null;
  first_failed_at: Date;
  failed_at: Date;
  fingerprint: string;
  error_summary: string;
}

const iso = (date: Date | null) => (date ? date.toISOString() : null);

export function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    id: row.id,
    channel: row.channel,
    group: row.consumer_group,
    messageId: row.message_id,
    message: row.message,
    replayable: row.replayable,
    status: row.status,
    attempts: row.attempts,
    error: row.error,
    failures: row.failures,
    correlationId: row.correlation_id,
    replayCount: row.replay_count,
    lastReplayedAt: iso(row.last_replayed_at),
    lastReplayedBy: row.last_replayed_by,
    resolvedAt: iso(row.resolved_at),
    discardedAt: iso(row.discarded_at),
    discardedBy: row.discarded_by,
    discardReason: row.discard_reason,
    firstFailedAt: row.first_failed_at.toISOString(),
    failedAt: row.failed_at.toISOString(),
    fingerprint: row.fingerprint,
    errorSummary: row.error_summary,
  };
}

export interface ReplayRow {
  id: string;
  dead_letter_id: string;
  operation_id: string | null;
  state: ReplayState;
  detail: string | null;
  attempt: number | null;
  replayed_by: string | null;
  replayed_at: Date | null;
  outcome: ReplayOutcome | null;
  outcome_error: ErrorRecord | null;
  outcome_at: Date | null;
}

export function toReplay(row: ReplayRow): Replay {
  return {
    id: row.id,
    deadLetterId: row.dead_letter_id,
    operationId: row.operation_id,
    state: row.state,
    detail: row.detail,
    attempt: row.attempt,
    replayedBy: row.replayed_by,
    replayedAt: iso(row.replayed_at),
    outcome: row.outcome,
    outcomeError: row.outcome_error,
    outcomeAt: iso(row.outcome_at),
  };
}

export interface ReplayOperationRow {
  id: string;
  selection: ReplaySelection;
  status: ReplayOperation["status"];
  total: number;
  rate_per_second: number;
  started_by: string;
  started_at: Date;
  cancelled_by: string | null;
  finished_at: Date | null;
}

type ReplayCounts = Pick<ReplayOperation, "progress" | "outcomes">;

export function toReplayOperation(row: ReplayOperationRow, counts: ReplayCounts | undefined): ReplayOperation {
  return {
    id: row.id,
    selection: row.selection,
    status: row.status,
    total: row.total,
    ratePerSecond: row.rate_per_second,
    startedBy: row.started_by,
    startedAt: row.started_at.toISOString(),
    cancelledBy: row.cancelled_by,
    finishedAt: iso(row.finished_at),
    progress: counts?.progress ?? { waiting: 0, sent: 0, skipped: 0, cancelled: 0 },
    outcomes: counts?.outcomes ?? { pending: 0, resolved: 0, failed: 0 },
  };
}
