/** A saga as the engine reports it: to the orders it runs for, the console, the REPL, tests and benches. */
import type { Page } from "../lib/paging";

export const SAGA_STATUSES = ["RUNNING", "COMPENSATING", "COMPLETED", "COMPENSATED", "FAILED"] as const;
export type SagaStatus = (typeof SAGA_STATUSES)[number];

/** A saga that moves no more unless an operator acts: finished either way, or parked (FAILED) until retried. */
export function isSagaAtRest(status: SagaStatus): boolean {
  return status === "COMPLETED" || status === "COMPENSATED" || status === "FAILED";
}

/** The engine sees a saga's context as the JSON it stores it as. */
export type StoredContext = Record<string, unknown>;

export interface SagaTimelineEntry {
  at: string;
  step: string;
  attempt: number;
  /**
   * `ok`, `rejected`, `transient`, `unavailable`, or what happened to the saga: `started`, `resumed`, `abandoned`,
   * `swept` (taken over from an engine whose lease ran out).
   */
  outcome: string;
  message: string | null;
  durationMs: number | null;
}

export interface Saga {
  id: string;
  definition: string;
  subjectId: string;
  status: SagaStatus;
  /** What it runs now (or stopped at): `payment`, `payment:compensate`, `finish:completed`, … */
  step: string;
  attempt: number;
  completedSteps: number;
  reason: string | null;
  context: StoredContext;
  createdAt: string;
  updatedAt: string;
  /** When its current action was, or will be, due (a retry's backoff puts it in the future). */
  dueAt: string;
  /** The engine (`<node id>/<instance id>`) that runs it, and until when its lease holds; null when none does. */
  leaseOwner: string | null;
  leaseUntil: string | null;
  /** RUNNING or COMPENSATING with no engine holding it (its lease ran out or was released): the sweeper takes it. */
  stalled: boolean;
  finishedAt: string | null;
  timeline?: SagaTimelineEntry[];
}

export type SagaPage = Page<Saga>;
