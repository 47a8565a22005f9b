/**
 * Sagas as data, and the one function that moves a saga on. A definition lists ordered steps, each with an action,
 * an optional compensation, a timeout and a retry policy; the engine (services/sagas.service.ts) runs one action at
 * a time, classifies its outcome and asks `decide` what comes next. No broker, no database: every rule of the
 * engine is here, unit-tested.
 *
 * - A step that succeeds moves on; the last one finishes with `onCompleted`.
 * - A business failure (a 4xx: declined, unsupported) compensates at once; a transient one (a timeout, a 5xx) is
 *   retried with backoff up to the step's attempts, then compensated, that step included (it may have acted).
 * - An unavailable participant (no node, its circuit breaker open, its bulkhead full) is waited for: the same attempt again later, up
 *   to `maxUnavailableWaits` times; after that the attempt counts as failed.
 * - Compensations run for the completed steps only, in reverse order, then `onCompensated`.
 * - A compensation (or a finisher) that keeps failing parks the saga as FAILED with its reason, at the action that
 *   failed, for an operator to `resume` once the cause is fixed.
 */
import { isRetryable } from "./delivery";
import type { SagaStatus } from "../contracts/sagas";
import { backoff } from "./backoff";

export interface RetryPolicy {
  /** Tries of the action, the first included. */
  attempts: number;
  delayMs: number;
  maxDelayMs: number;
}

export interface ActionCall<C> {
  action: string;
  params: (context: C, reason: string | null) => object;
}

export interface StepDefinition<C> extends ActionCall<C> {
  name: string;
  /** What the step's result adds to the saga's context (e.g. the payment id). */
  result?: (context: C, result: unknown) => Partial<C>;
  compensation?: ActionCall<C>;
  timeoutMs: number;
  retry: RetryPolicy;
}

export interface SagaDefinition<C> {
  name: string;
  /** The event that starts one saga per subject (a second event for the same subject starts nothing). */
  start: { event: string; subjectId: (payload: unknown) => string; context: (payload: unknown, sagaId: string) => C };
  steps: StepDefinition<C>[];
  /** Run after the last step succeeded (e.g. the order is COMPLETED). */
  onCompleted: ActionCall<C>;
  /** Run after the compensations, with the reason (e.g. the order is CANCELLED or COMPENSATED). */
  onCompensated: ActionCall<C>;
  /** Retries of compensations and finishers before the saga is parked. */
  compensationRetry: RetryPolicy;
  /** Timeout of compensations and finishers. */
  compensationTimeoutMs: number;
  /** How long to wait before calling an unavailable participant again. */
  unavailableDelayMs: number;
  /** Waits for an unavailable participant before the attempt counts as failed (transient). */
  maxUnavailableWaits: number;
}

/** Where a saga is: running a step forward, compensating one, or finishing (`finish` is the finisher to run). */
export type Phase = "forward" | "compensate" | "finish";
export type Finisher = "completed" | "compensated";

export interface Cursor {
  phase: Phase;
  /** The step (forward, compensate); unused when finishing. */
  step: number;
  attempt: number;
  finish?: Finisher;
  /** Times this attempt waited for an unavailable participant. */
  waits?: number;
}

export interface SagaState {
  status: SagaStatus;
  cursor: Cursor;
  /** Forward steps that succeeded, in order: what compensation must undo. */
  completed: number;
  reason: string | null;
}

export type Outcome =
  | { kind: "ok"; result: unknown }
  | { kind: "rejected"; message: string }
  | { kind: "transient"; message: string }
  | { kind: "unavailable"; message: string };

/**
 * What a participant's error means for the step. An unreachable participant, or one whose bulkhead is full
 * (`QUEUE_FULL`: saturated, not failing), is waited for without using up an attempt, so a burst slows sagas down
 * instead of compensating them; retryable faults are retried; the rest (4xx) are the business's answer.
 */
export function classify(err: unknown): Outcome {
  const { type, message } = (err ?? {}) as { type?: string; message?: string };
  if (type === "SERVICE_NOT_AVAILABLE" || type === "SERVICE_NOT_FOUND" || type === "QUEUE_FULL") {
    return { kind: "unavailable", message: message ?? String(err) };
  }
  return { kind: isRetryable(err) ? "transient" : "rejected", message: message ?? String(err) };
}

/** What to do next: the new state, and the next action to run after `delayMs`, or none when the saga is done. */
export interface Decision {
  state: SagaState;
  next: { cursor: Cursor; delayMs: number } | null;
}

export function initialState(): SagaState {
  return { status: "RUNNING", cursor: { phase: "forward", step: 0, attempt: 1 }, completed: 0, reason: null };
}

/** The action call the cursor points at. */
export function callAt<C>(definition: SagaDefinition<C>, cursor: Cursor): ActionCall<C> {
  if (cursor.phase === "forward") return definition.steps[cursor.step];
  if (cursor.phase === "compensate") return definition.steps[cursor.step].compensation!;
  return cursor.finish === "completed" ? definition.onCompleted : definition.onCompensated;
}

export function timeoutAt<C>(definition: SagaDefinition<C>, cursor: Cursor): number {
  return cursor.phase === "forward" ? definition.steps[cursor.step].timeoutMs : definition.compensationTimeoutMs;
}

/** A name for the cursor, for the timeline and idempotency keys: `payment`, `payment:compensate`, `finish:completed`. */
export function cursorName<C>(definition: SagaDefinition<C>, cursor: Cursor): string {
  if (cursor.phase === "finish") return `finish:${cursor.finish}`;
  const name = definition.steps[cursor.step].name;
  return cursor.phase === "forward" ? name : `${name}:compensate`;
}

const step = (phase: Phase, index: number): Cursor => ({ phase, step: index, attempt: 1 });
const nextAttempt = (cursor: Cursor): Cursor => ({
  phase: cursor.phase,
  step: cursor.step,
  attempt: cursor.attempt + 1,
  ...(cursor.finish ? { finish: cursor.finish } : {}),
});
const finishing = (finish: Finisher): Cursor => ({ phase: "finish", step: 0, attempt: 1, finish });

/** The compensation to run before step `below` (the highest completed step that has one), or the finisher. */
function compensationBelow<C>(definition: SagaDefinition<C>, below: number): Cursor {
  for (let index = below - 1; index >= 0; index--) {
    if (definition.steps[index].compensation) return step("compensate", index);
  }
  return finishing("compensated");
}

/**
 * Starts compensating below step `below`. A rejected step did nothing, so compensation starts below it; a step that
 * never answered may have acted (a charge that lands late), so it is compensated too: compensations are idempotent
 * and one that comes first voids the late action.
 */
function compensate<C>(
  definition: SagaDefinition<C>,
  state: SagaState,
  reason: string,
  below = state.completed,
): Decision {
  const cursor = compensationBelow(definition, below);
  return { state: { ...state, status: "COMPENSATING", cursor, reason }, next: { cursor, delayMs: 0 } };
}

export function decide<C>(definition: SagaDefinition<C>, state: SagaState, outcome: Outcome): Decision {
  const { cursor } = state;
  const name = cursorName(definition, cursor);

  if (outcome.kind === "unavailable") {
    const waits = (cursor.waits ?? 0) + 1;
    if (waits <= definition.maxUnavailableWaits) {
      const waiting = { ...cursor, waits };
      return {
        state: { ...state, cursor: waiting },
        next: { cursor: waiting, delayMs: definition.unavailableDelayMs },
      };
    }
    // Waited long enough: from here on it is a failed attempt like a timeout.
    return decide(definition, { ...state, cursor: { ...cursor, waits: undefined } }, { ...outcome, kind: "transient" });
  }

  if (cursor.phase === "forward") {
    const policy = definition.steps[cursor.step].retry;
    if (outcome.kind === "ok") {
      const completed = cursor.step + 1;
      const next = completed < definition.steps.length ? step("forward", completed) : finishing("completed");
      return { state: { ...state, cursor: next, completed }, next: { cursor: next, delayMs: 0 } };
    }
    if (outcome.kind === "transient" && cursor.attempt < policy.attempts) {
      const retry = nextAttempt(cursor);
      return {
        state: { ...state, cursor: retry },
        next: { cursor: retry, delayMs: backoff(cursor.attempt, policy.delayMs, policy.maxDelayMs) },
      };
    }
    if (outcome.kind === "transient") {
      const why = `${name} failed after ${cursor.attempt} attempt(s): ${outcome.message}`;
      return compensate(definition, state, why, cursor.step + 1);
    }
    return compensate(definition, state, outcome.message);
  }

  if (outcome.kind === "ok") {
    if (cursor.phase === "compensate") {
      const next = compensationBelow(definition, cursor.step);
      return { state: { ...state, cursor: next }, next: { cursor: next, delayMs: 0 } };
    }
    return { state: { ...state, status: cursor.finish === "completed" ? "COMPLETED" : "COMPENSATED" }, next: null };
  }

  // A compensation or a finisher failed: it must happen, so it is retried whatever the failure, then parked.
  const policy = definition.compensationRetry;
  if (cursor.attempt < policy.attempts) {
    const retry = nextAttempt(cursor);
    return {
      state: { ...state, cursor: retry },
      next: { cursor: retry, delayMs: backoff(cursor.attempt, policy.delayMs, policy.maxDelayMs) },
    };
  }
  const failure = `${name} failed after ${cursor.attempt} attempt(s): ${outcome.message}`;
  // Parked where it stopped, for an operator: `resume` runs the same action again.
  return {
    state: { ...state, status: "FAILED", reason: state.reason ? `${state.reason}; ${failure}` : failure },
    next: null,
  };
}

/** An operator's retry of a parked saga: the action it stopped at, from the first attempt. */
export function resume(state: SagaState): Decision {
  const { waits: _waits, ...rest } = state.cursor;
  const cursor = { ...rest, attempt: 1 };
  const status: SagaStatus = cursor.phase === "forward" || cursor.finish === "completed" ? "RUNNING" : "COMPENSATING";
  return { state: { ...state, status, cursor }, next: { cursor, delayMs: 0 } };
}

/**
 * An operator's decision to give up on a running saga: compensate what was done, the current step included (it may
 * be in flight or have acted without answering; its compensation voids it if it never happens).
 */
export function abandon<C>(definition: SagaDefinition<C>, state: SagaState, reason: string): Decision {
  const below = state.cursor.phase === "forward" ? state.cursor.step + 1 : state.completed;
  return compensate(definition, state, reason, below);
}
