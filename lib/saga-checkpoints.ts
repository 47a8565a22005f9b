/**
 * The statement that writes the saga executor's checkpoints (lib/saga-executor.ts), and a checkpoint as one row of
 * its input. The sagas service (services/sagas.service.ts) runs it, alone or in the transaction that parks a saga.
 */
import type { Checkpoint } from "./saga-executor";

/**
 * One statement for a batch of checkpoints: each saga's new state, applied only where this engine holds the lease
 * and the row is at the version it last saw, and the timeline entry of each one applied. A saga that ends (or is
 * parked) gives its lease up in the same statement. Returns the ids it moved.
 */
export const CHECKPOINT_SQL = `
  WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
      id uuid, version integer, status text, cursor jsonb, completed integer, reason text, context jsonb,
      finished boolean, moving boolean, due_ms double precision,
      step text, attempt integer, outcome text, message text, duration_ms integer)
  ), moved AS (
    UPDATE sagas s SET status = i.status, cursor = i.cursor, completed = i.completed, reason = i.reason,
      context = coalesce(i.context, s.context), version = s.version + 1, updated_at = now(),
      finished_at = CASE WHEN i.finished THEN now() ELSE s.finished_at END,
      due_at = now() + make_interval(secs => i.due_ms / 1000.0),
      lease_owner = CASE WHEN i.moving THEN s.lease_owner END,
      lease_until = CASE WHEN i.moving THEN s.lease_until END
    FROM input i WHERE s.id = i.id AND s.version = i.version AND s.lease_owner = $2
    RETURNING s.id
  ), logged AS (
    INSERT INTO saga_events (saga_id, step, attempt, outcome, message, duration_ms)
    SELECT i.id, i.step, i.attempt, i.outcome, i.message, i.duration_ms FROM input i JOIN moved m ON m.id = i.id
  )
  SELECT id FROM moved`;

export function checkpointRow(checkpoint: Checkpoint) {
  const { saga, decision, entry, context } = checkpoint;
  const { status, cursor, completed, reason } = decision.state;
  return {
    id: saga.id,
    version: saga.version,
    status,
    cursor,
    completed,
    reason,
    context: context ?? null,
    finished: !decision.next && status !== "FAILED",
    moving: decision.next !== null,
    // The sweeper and the API read when the next action is due; a backoff is no stall.
    due_ms: decision.next?.delayMs ?? 0,
    step: entry.step,
    attempt: entry.attempt,
    outcome: entry.outcome,
    message: entry.message,
    duration_ms: entry.durationMs,
  };
}
