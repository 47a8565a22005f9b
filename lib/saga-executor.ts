/**
 * The in-process saga executor (issue 15): it drives the sagas its node holds a lease on, one action after another,
 * with no message between two steps. For each saga: wait until its action is due, call it (at most `concurrency`
 * calls at once on the node), ask `decide` (lib/saga.ts) what follows, and write a checkpoint: the saga's new state
 * and its timeline entry, in one statement that applies only while this node still holds the lease and the row is
 * at the version the executor last saw. Checkpoints of concurrent sagas are batched: one flush writes every
 * checkpoint that arrived while the previous flush ran. Nothing holds a transaction or a row lock across a call.
 *
 * A checkpoint that does not apply means the saga moved elsewhere (an operator's move, another engine that took
 * over an expired lease): the executor lets it go. A checkpoint that cannot be written (PostgreSQL down) is retried
 * until it can; if the node dies meanwhile, its lease runs out and another engine runs the step again, which the
 * participants' idempotency keys make harmless.
 *
 * No broker and no SQL here: the engine (services/sagas.service.ts) supplies them through `ExecutorPorts`.
 */
import { cursorName, decide, type Decision, type Outcome, type SagaDefinition, type SagaState } from "./saga";
import { backoff } from "./backoff";

export type StoredContext = Record<string, unknown>;

/** A saga this node runs, as the executor knows it between checkpoints. */
export interface RunningSaga {
  id: string;
  definition: string;
  context: StoredContext;
  state: SagaState;
  /** The row's version as the executor last wrote or read it: a checkpoint applies only on top of it. */
  version: number;
  /** The request that started the saga: its steps' spans and logs carry it. */
  correlationId: string;
  /** When its current action is due, in ms since the epoch (a retry's backoff puts it in the future). */
  dueAt: number;
}

export interface TimelineEntry {
  step: string;
  attempt: number;
  outcome: string;
  message: string | null;
  durationMs: number | null;
}

export interface Checkpoint {
  saga: RunningSaga;
  decision: Decision;
  entry: TimelineEntry;
  /** The context with what the step's result added, when it added something. */
  context?: StoredContext;
}

export interface ExecutorPorts {
  definition(name: string): SagaDefinition<StoredContext>;
  /** Runs the action the saga's cursor points at and classifies the outcome; never throws. */
  call(saga: RunningSaga, step: string): Promise<Outcome>;
  /** Writes the checkpoints of several sagas in one statement; resolves with the ids it wrote. */
  checkpoint(batch: Checkpoint[]): Promise<Set<string>>;
  /** Writes the checkpoint of a saga parked as FAILED together with its dead letter; false if it did not apply. */
  park(checkpoint: Checkpoint): Promise<boolean>;
  /** After a checkpoint has committed (metrics, fault points). */
  committed(checkpoint: Checkpoint): void;
  warn(message: string): void;
}

export interface ExecutorOptions {
  /** Actions called at once. */
  concurrency: number;
  /** Checkpoints written by one statement at most. */
  maxBatch?: number;
}

interface Queued {
  checkpoint: Checkpoint;
  resolve: (written: boolean) => void;
  reject: (err: unknown) => void;
}

export class SagaExecutor {
  private readonly running = new Map<string, RunningSaga>();
  private readonly drives = new Set<Promise<void>>();
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; wake: (awake: boolean) => void }>();
  private readonly slotWaiters: (() => void)[] = [];
  private freeSlots: number;
  private readonly queue: Queued[] = [];
  private flushing = false;
  private stopping = false;
  private readonly maxBatch: number;

  constructor(
    private readonly ports: ExecutorPorts,
    options: ExecutorOptions,
  ) {
    this.freeSlots = options.concurrency;
    this.maxBatch = options.maxBatch ?? 200;
  }

  /** The ids of the sagas this node runs now: the leases it renews. */
  ids(): string[] {
    return [...this.running.keys()];
  }

  /** Starts driving a saga this node has just taken the lease of (a newer copy replaces one it already ran). */
  adopt(saga: RunningSaga): void {
    if (this.stopping) return;
    this.running.set(saga.id, saga);
    const drive: Promise<void> = this.drive(saga)
      .catch((err: Error) => this.ports.warn(`Saga ${saga.id} stopped running here: ${err.message}`))
      .finally(() => {
        this.drives.delete(drive);
        if (this.running.get(saga.id) === saga) this.running.delete(saga.id);
      });
    this.drives.add(drive);
  }

  /**
   * Stops taking actions: waits cut short, the calls in flight answered and checkpointed (each within its
   * timeout). The engine then releases its leases, so other nodes take the sagas over at once.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const sleeper of this.sleepers) {
      clearTimeout(sleeper.timer);
      sleeper.wake(false);
    }
    this.sleepers.clear();
    await Promise.allSettled([...this.drives]);
  }

  private isCurrent(saga: RunningSaga): boolean {
    return !this.stopping && this.running.get(saga.id) === saga;
  }

  private async drive(saga: RunningSaga): Promise<void> {
    const definition = this.ports.definition(saga.definition);
    while (this.isCurrent(saga)) {
      const wait = saga.dueAt - Date.now();
      if (wait > 0 && !(await this.sleep(wait))) return;
      await this.takeSlot();
      let outcome: Outcome;
      const step = cursorName(definition, saga.state.cursor);
      const started = performance.now();
      try {
        if (!this.isCurrent(saga)) return;
        outcome = await this.ports.call(saga, step);
      } finally {
        this.giveSlot();
      }
      const decision = decide(definition, saga.state, outcome);
      const { cursor } = saga.state;
      const forward = cursor.phase === "forward" ? definition.steps[cursor.step] : undefined;
      const checkpoint: Checkpoint = {
        saga,
        decision,
        entry: {
          step,
          attempt: cursor.attempt,
          outcome: outcome.kind,
          message: outcome.kind === "ok" ? null : outcome.message,
          durationMs: Math.round(performance.now() - started),
        },
        context:
          outcome.kind === "ok" && forward?.result
            ? { ...saga.context, ...forward.result(saga.context, outcome.result) }
            : undefined,
      };
      const parked = !decision.next && decision.state.status === "FAILED";
      const written = await this.persist(checkpoint, parked);
      if (!written) return;
      saga.version += 1;
      saga.state = decision.state;
      if (checkpoint.context) saga.context = checkpoint.context;
      saga.dueAt = Date.now() + (decision.next?.delayMs ?? 0);
      this.ports.committed(checkpoint);
      if (!decision.next) return;
    }
  }

  /** Writes a checkpoint, trying again while the database fails; false when it did not apply or the node stops. */
  private async persist(checkpoint: Checkpoint, parked: boolean): Promise<boolean> {
    for (let failures = 0; ; failures++) {
      try {
        return parked ? await this.ports.park(checkpoint) : await this.enqueue(checkpoint);
      } catch (err) {
        if (this.stopping) return false;
        const delay = backoff(failures + 1, 100, 5000);
        if (failures % 10 === 0) {
          this.ports.warn(
            `Saga ${checkpoint.saga.id}: checkpoint not written (${(err as Error).message}); trying again in ${delay} ms`,
          );
        }
        if (!(await this.sleep(delay))) return false;
      }
    }
  }

  private enqueue(checkpoint: Checkpoint): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ checkpoint, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Writes what is queued, a batch per statement; what arrives meanwhile goes into the next one. */
  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const written = await this.ports.checkpoint(batch.map((queued) => queued.checkpoint));
        for (const queued of batch) queued.resolve(written.has(queued.checkpoint.saga.id));
      } catch (err) {
        if (batch.length === 1) {
          batch[0].reject(err);
          continue;
        }
        // One bad checkpoint must not hold back the others: each on its own, so only the bad one fails.
        for (const queued of batch) {
          try {
            const written = await this.ports.checkpoint([queued.checkpoint]);
            queued.resolve(written.has(queued.checkpoint.saga.id));
          } catch (single) {
            queued.reject(single);
          }
        }
      }
    }
    this.flushing = false;
  }

  /** Resolves true after `ms`, or false at once when the executor stops. */
  private sleep(ms: number): Promise<boolean> {
    if (this.stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve(true);
        }, ms),
        wake: resolve,
      };
      this.sleepers.add(sleeper);
    });
  }

  private async takeSlot(): Promise<void> {
    if (this.freeSlots > 0) {
      this.freeSlots -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
  }

  private giveSlot(): void {
    const next = this.slotWaiters.shift();
    if (next) next();
    else this.freeSlots += 1;
  }
}
