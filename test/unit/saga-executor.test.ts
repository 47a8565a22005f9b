/**
 * The in-process executor's own rules, with its ports in memory (the engine's SQL and calls are covered against the
 * real PostgreSQL and NATS by the saga suites): batched checkpoints, a saga let go when its checkpoint does not
 * apply, the cap on actions at once, a bad checkpoint that does not hold back the others, and stopping.
 */
import { initialState, type SagaDefinition } from "../../lib/saga";
import {
  SagaExecutor,
  type Checkpoint,
  type ExecutorPorts,
  type RunningSaga,
  type StoredContext,
} from "../../lib/saga-executor";

const retry = { attempts: 2, delayMs: 5, maxDelayMs: 5 };
const step = (name: string) => ({ name, action: `test.${name}`, params: () => ({}), timeoutMs: 1000, retry });
const definition: SagaDefinition<StoredContext> = {
  name: "test",
  start: { event: "test.started", subjectId: () => "s", context: () => ({}) },
  steps: [step("one"), step("two")],
  onCompleted: { action: "test.done", params: () => ({}) },
  onCompensated: { action: "test.undone", params: () => ({}) },
  compensationRetry: retry,
  compensationTimeoutMs: 1000,
  unavailableDelayMs: 5,
  maxUnavailableWaits: 1,
};

const saga = (id: string): RunningSaga => ({
  id,
  definition: "test",
  context: {},
  state: initialState(),
  version: 1,
  correlationId: id,
  dueAt: 0,
});

const tick = (ms = 1) => new Promise((resolve) => setTimeout(resolve, ms));

/** In-memory ports: every call answers ok after `callMs`; `checkpoint` records each batch it writes. */
function ports(overrides: Partial<ExecutorPorts> = {}, callMs = 2) {
  const batches: Checkpoint[][] = [];
  const calls: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const base: ExecutorPorts = {
    definition: () => definition,
    async call(running, stepName) {
      calls.push(`${running.id}:${stepName}`);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await tick(callMs);
      inFlight -= 1;
      return { kind: "ok", result: null };
    },
    async checkpoint(batch) {
      await tick();
      batches.push(batch);
      return new Set(batch.map((checkpoint) => checkpoint.saga.id));
    },
    park: async () => true,
    committed: () => undefined,
    warn: () => undefined,
    ...overrides,
  };
  return { ports: base, batches, calls, maxInFlight: () => maxInFlight };
}

async function until(check: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await tick(5);
  }
}

describe("the saga executor", () => {
  it("drives each saga to its end, writing the checkpoints of concurrent sagas in shared statements", async () => {
    const { ports: p, batches } = ports();
    const executor = new SagaExecutor(p, { concurrency: 100 });
    const sagas = Array.from({ length: 20 }, (_, index) => saga(`s${index}`));
    for (const running of sagas) executor.adopt(running);
    await until(() => executor.ids().length === 0);
    // Two steps and the finisher each: three checkpoints per saga, every one written once.
    const written = batches.flat();
    expect(written).toHaveLength(60);
    expect(sagas.every((running) => running.state.status === "COMPLETED" && running.version === 4)).toBe(true);
    // Far fewer statements than checkpoints: those that arrive while a flush runs share the next one.
    expect(batches.length).toBeLessThan(20);
    expect(Math.max(...batches.map((batch) => batch.length))).toBeGreaterThan(1);
  });

  it("lets a saga go when its checkpoint does not apply (another engine or an operator moved it)", async () => {
    const { ports: p, calls } = ports({ checkpoint: async () => new Set<string>() });
    const executor = new SagaExecutor(p, { concurrency: 10 });
    const running = saga("lost");
    executor.adopt(running);
    await until(() => executor.ids().length === 0);
    expect(calls).toEqual(["lost:one"]);
    expect(running.version).toBe(1);
  });

  it("calls no more than `concurrency` actions at once", async () => {
    const { ports: p, maxInFlight } = ports({}, 10);
    const executor = new SagaExecutor(p, { concurrency: 3 });
    for (let index = 0; index < 12; index++) executor.adopt(saga(`c${index}`));
    await until(() => executor.ids().length === 0);
    expect(maxInFlight()).toBe(3);
  });

  it("writes the other checkpoints of a batch when one of them fails, and retries that one until it is written", async () => {
    let poisoned = 3;
    const written: string[] = [];
    const { ports: p } = ports({
      async checkpoint(batch) {
        await tick();
        if (batch.some((checkpoint) => checkpoint.saga.id === "bad") && poisoned-- > 0) throw new Error("refused");
        for (const checkpoint of batch) written.push(`${checkpoint.saga.id}:${checkpoint.entry.step}`);
        return new Set(batch.map((checkpoint) => checkpoint.saga.id));
      },
    });
    const executor = new SagaExecutor(p, { concurrency: 10 });
    const sagas = ["a", "bad", "b"].map(saga);
    for (const running of sagas) executor.adopt(running);
    await until(() => executor.ids().length === 0);
    expect(sagas.map((running) => running.state.status)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED"]);
    // Each checkpoint written exactly once, the refused one included, once the database took it.
    expect(written.filter((entry) => entry.startsWith("bad:"))).toEqual(["bad:one", "bad:two", "bad:finish:completed"]);
    expect(written).toHaveLength(9);
  });

  it("stops at once while sagas wait out a backoff, and after the calls in flight are checkpointed", async () => {
    let release!: () => void;
    const slowCall = new Promise<void>((resolve) => (release = resolve));
    const { ports: p, batches } = ports({
      async call(running) {
        if (running.id === "slow") await slowCall;
        return { kind: "ok", result: null };
      },
    });
    const executor = new SagaExecutor(p, { concurrency: 10 });
    const waiting = { ...saga("waiting"), dueAt: Date.now() + 60_000 };
    executor.adopt(waiting);
    executor.adopt(saga("slow"));
    await tick(20);
    let stopped = false;
    const stopping = executor.stop().then(() => (stopped = true));
    await tick(20);
    expect(stopped).toBe(false);
    release();
    await stopping;
    // The slow call's outcome is kept; the waiting saga never ran (its lease is released for another engine).
    expect(batches.flat().map((checkpoint) => `${checkpoint.saga.id}:${checkpoint.entry.step}`)).toEqual(["slow:one"]);
    expect(waiting.version).toBe(1);
    // A stopped executor adopts nothing.
    executor.adopt(saga("late"));
    expect(executor.ids()).not.toContain("late");
  });
});
