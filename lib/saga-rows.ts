/**
 * The saga engine's rows (services/sagas.service.ts and its mixins): a saga and a timeline entry as PostgreSQL returns
 * them, and what the engine makes of a saga's row: its state for lib/saga.ts, a saga for the executor to run, the
 * saga the API answers with.
 */
import type { Saga, SagaStatus, SagaTimelineEntry, StoredContext } from "../contracts/sagas";
import { cursorName, type Cursor, type SagaDefinition, type SagaState } from "./saga";
import type { RunningSaga } from "./saga-executor";

export interface SagaRow {
  id: string;
  definition: string;
  subject_id: string;
  status: SagaStatus;
  cursor: Cursor;
  completed: number;
  context: StoredContext;
  reason: string | null;
  version: number;
  correlation_id: string;
  created_at: Date;
  updated_at: Date;
  due_at: Date;
  lease_owner: string | null;
  lease_until: Date | null;
  finished_at: Date | null;
}

export interface EventRow {
  at: Date;
  step: string;
  attempt: number;
  outcome: string;
  message: string | null;
  duration_ms: number | null;
}

const MOVING: readonly SagaStatus[] = ["RUNNING", "COMPENSATING"];

export function stateOf(row: SagaRow): SagaState {
  return { status: row.status, cursor: row.cursor, completed: row.completed, reason: row.reason };
}

export function runningOf(row: SagaRow): RunningSaga {
  return {
    id: row.id,
    definition: row.definition,
    context: row.context,
    state: stateOf(row),
    version: row.version,
    correlationId: row.correlation_id,
    dueAt: row.due_at.getTime(),
  };
}

/** The saga of a row, its step named by its definition when this node knows it. */
export function toSaga(row: SagaRow, definitions: Record<string, SagaDefinition<StoredContext>>): Saga {
  const definition = definitions[row.definition];
  const held = row.lease_until !== null && row.lease_until.getTime() > Date.now();
  return {
    id: row.id,
    definition: row.definition,
    subjectId: row.subject_id,
    status: row.status,
    step: definition ? cursorName(definition, row.cursor) : row.cursor.phase,
    attempt: row.cursor.attempt,
    completedSteps: row.completed,
    reason: row.reason,
    context: row.context,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    dueAt: row.due_at.toISOString(),
    leaseOwner: row.lease_owner,
    leaseUntil: row.lease_until?.toISOString() ?? null,
    stalled: MOVING.includes(row.status) && !held,
    finishedAt: row.finished_at?.toISOString() ?? null,
  };
}

export function timelineEntryOf(event: EventRow): SagaTimelineEntry {
  return {
    at: event.at.toISOString(),
    step: event.step,
    attempt: event.attempt,
    outcome: event.outcome,
    message: event.message,
    durationMs: event.duration_ms,
  };
}
