import { Errors } from "moleculer";
import {
  abandon,
  classify,
  decide,
  initialState,
  resume,
  type Outcome,
  type SagaDefinition,
  type SagaState,
} from "../../lib/saga";

const retry = { attempts: 3, delayMs: 100, maxDelayMs: 1000 };
const call = (action: string) => ({ action, params: () => ({}) });
const definition: SagaDefinition<object> = {
  name: "test",
  start: { event: "thing.created", subjectId: () => "s", context: () => ({}) },
  steps: [
    { name: "pay", ...call("p.charge"), compensation: call("p.refund"), timeoutMs: 100, retry },
    { name: "mark", ...call("o.mark"), timeoutMs: 100, retry },
    { name: "ship", ...call("s.create"), compensation: call("s.cancel"), timeoutMs: 100, retry },
  ],
  onCompleted: call("o.complete"),
  onCompensated: call("o.cancel"),
  compensationRetry: { attempts: 2, delayMs: 50, maxDelayMs: 1000 },
  compensationTimeoutMs: 100,
  unavailableDelayMs: 5000,
  maxUnavailableWaits: 2,
};

const ok: Outcome = { kind: "ok", result: {} };
const rejected: Outcome = { kind: "rejected", message: "declined" };
const transient: Outcome = { kind: "transient", message: "timed out" };

/** Feeds outcomes one after the other from the start and returns every decision. */
function run(...outcomes: Outcome[]) {
  let state: SagaState = initialState();
  return outcomes.map((outcome) => {
    const decision = decide(definition, state, outcome);
    state = decision.state;
    return decision;
  });
}

describe("saga decisions", () => {
  it("runs the steps in order, then the completion, and ends COMPLETED", () => {
    const decisions = run(ok, ok, ok, ok);
    expect(decisions.map((d) => d.next?.cursor)).toEqual([
      { phase: "forward", step: 1, attempt: 1 },
      { phase: "forward", step: 2, attempt: 1 },
      { phase: "finish", step: 0, attempt: 1, finish: "completed" },
      undefined,
    ]);
    expect(decisions.at(-1)!.state).toMatchObject({ status: "COMPLETED", completed: 3 });
  });

  it("compensates nothing when the first step is rejected, and ends COMPENSATED with the reason", () => {
    const [first, last] = run(rejected, ok);
    expect(first.state).toMatchObject({ status: "COMPENSATING", reason: "declined" });
    expect(first.next!.cursor).toEqual({ phase: "finish", step: 0, attempt: 1, finish: "compensated" });
    expect(last.state.status).toBe("COMPENSATED");
  });

  it("compensates completed steps only, in reverse order, skipping steps without a compensation", () => {
    const decisions = run(ok, ok, rejected, ok, ok);
    expect(decisions.slice(2).map((d) => d.next?.cursor)).toEqual([
      { phase: "compensate", step: 0, attempt: 1 },
      { phase: "finish", step: 0, attempt: 1, finish: "compensated" },
      undefined,
    ]);
  });

  it("retries a transient failure with backoff up to the step's attempts, then compensates it too", () => {
    const decisions = run(ok, ok, transient, transient, transient, ok);
    expect(decisions.slice(2).map((d) => [d.next?.cursor, d.next?.delayMs])).toEqual([
      [{ phase: "forward", step: 2, attempt: 2 }, 100],
      [{ phase: "forward", step: 2, attempt: 3 }, 200],
      // The step never answered: it may have acted, so its own compensation runs first.
      [{ phase: "compensate", step: 2, attempt: 1 }, 0],
      [{ phase: "compensate", step: 0, attempt: 1 }, 0],
    ]);
    expect(decisions.at(-1)!.state.reason).toBe("ship failed after 3 attempt(s): timed out");
    expect(decisions.at(-1)!.state.status).toBe("COMPENSATING");
  });

  it("waits for an unavailable participant without spending an attempt, up to its waits", () => {
    const unavailable: Outcome = { kind: "unavailable", message: "no node" };
    const decisions = run(unavailable, unavailable, unavailable);
    expect(decisions.map((d) => d.next)).toEqual([
      { cursor: { phase: "forward", step: 0, attempt: 1, waits: 1 }, delayMs: 5000 },
      { cursor: { phase: "forward", step: 0, attempt: 1, waits: 2 }, delayMs: 5000 },
      // Waited enough: a failed attempt, retried like a timeout.
      { cursor: { phase: "forward", step: 0, attempt: 2 }, delayMs: 100 },
    ]);
  });

  it("parks the saga as FAILED where a compensation keeps failing, and resumes it there", () => {
    const decisions = run(ok, ok, rejected, transient, rejected);
    const parked = decisions.at(-1)!;
    expect(parked.next).toBeNull();
    expect(parked.state).toMatchObject({
      status: "FAILED",
      cursor: { phase: "compensate", step: 0, attempt: 2 },
      reason: "declined; pay:compensate failed after 2 attempt(s): declined",
    });
    const resumed = resume(parked.state);
    expect(resumed.state.status).toBe("COMPENSATING");
    expect(resumed.next).toEqual({ cursor: { phase: "compensate", step: 0, attempt: 1 }, delayMs: 0 });
  });

  it("lets an operator abandon a running saga: what was done is compensated, the current step included", () => {
    const [afterPay, afterMark] = run(ok, ok);
    // At `mark` (no compensation): the payment is undone.
    expect(abandon(definition, afterPay.state, "by hand")).toMatchObject({
      state: { status: "COMPENSATING", reason: "by hand" },
      next: { cursor: { phase: "compensate", step: 0, attempt: 1 } },
    });
    // At `ship`, which may be in flight: the shipment is cancelled first.
    expect(abandon(definition, afterMark.state, "by hand").next!.cursor).toEqual({
      phase: "compensate",
      step: 2,
      attempt: 1,
    });
  });
});

describe("participant errors", () => {
  it("waits for a saturated participant (bulkhead full) as for an unavailable one, instead of spending an attempt", () => {
    const full = new Errors.QueueIsFullError({ action: "payments.charge", nodeID: "node-1" });
    expect(classify(full)).toEqual({ kind: "unavailable", message: full.message });
    const gone = new Errors.ServiceNotAvailableError({ action: "payments.charge", nodeID: "node-1" });
    expect(classify(gone).kind).toBe("unavailable");
    expect(classify(new Errors.RequestTimeoutError({ action: "payments.charge", nodeID: "node-1" })).kind).toBe(
      "transient",
    );
    expect(classify(new Errors.MoleculerClientError("declined", 402, "PAYMENT_DECLINED")).kind).toBe("rejected");
  });
});
