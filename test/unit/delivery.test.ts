import { Errors } from "moleculer";
import {
  TolerantJsonSerializer,
  UndecodableMessage,
  deterministicId,
  errorRecord,
  isBackpressure,
  isRetryable,
  retryDelay,
} from "../../lib/delivery";
import { ConflictError, DependencyUnavailableError, invalidFields } from "../../lib/errors";

const policy = { maxAttempts: 5, retryDelayMs: 1000, maxRetryDelayMs: 60_000 };

describe("durable delivery rules", () => {
  it("doubles the delay after each failed attempt, up to the bound", () => {
    expect([1, 2, 3, 4].map((attempt) => retryDelay(policy, attempt))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelay(policy, 20)).toBe(60_000);
  });

  it("retries faults and dead-letters client errors at once", () => {
    expect(isRetryable(new DependencyUnavailableError("database", "connection refused"))).toBe(true);
    expect(isRetryable(new Errors.RequestTimeoutError({ action: "exec.tasks.create", nodeID: "node-1" }))).toBe(true);
    expect(isRetryable(new Error("ECONNRESET"))).toBe(true);
    expect(isRetryable(new Errors.MoleculerError("boom", 500, "BUG"))).toBe(true);
    expect(isRetryable(invalidFields("bad", [{ field: "a", message: "required", type: "required" }]))).toBe(false);
    expect(isRetryable(new ConflictError("stale", "STALE_VERSION", {}))).toBe(false);
  });

  it("tells the node's own overload refusals (backpressure) from failures", () => {
    expect(isBackpressure(new Errors.QueueIsFullError({ action: "narrow.handle", nodeID: "node-1" }), "node-1")).toBe(
      true,
    );
    // A local endpoint the circuit breaker took out is this node's saturation; another node's absence is a failure.
    const unavailable = (nodeID: string) => new Errors.ServiceNotAvailableError({ action: "payments.charge", nodeID });
    expect(isBackpressure(unavailable("node-1"), "node-1")).toBe(true);
    expect(isBackpressure(unavailable("node-2"), "node-1")).toBe(false);
    expect(isBackpressure(new Errors.RequestTimeoutError({ action: "a.b", nodeID: "node-1" }), "node-1")).toBe(false);
    expect(isBackpressure(new Error("ECONNRESET"), "node-1")).toBe(false);
  });

  it("keeps an error as the client-facing shape", () => {
    expect(errorRecord(new ConflictError("stale", "STALE_VERSION", { id: "x" }))).toEqual({
      name: "ConflictError",
      message: "stale",
      code: 409,
      type: "STALE_VERSION",
      data: { id: "x" },
    });
    expect(errorRecord(new TypeError("x is undefined"))).toEqual({
      name: "TypeError",
      message: "x is undefined",
      code: 500,
      type: "UNKNOWN_ERROR",
      data: null,
    });
  });

  it("turns bytes that are not JSON into an UndecodableMessage instead of throwing", () => {
    const serializer = new TolerantJsonSerializer();
    expect(serializer.deserialize(Buffer.from('{"a":1}'))).toEqual({ a: 1 });
    const bad = serializer.deserialize(Buffer.from("{ nope"));
    expect(bad).toBeInstanceOf(UndecodableMessage);
    expect(bad).toMatchObject({ excerpt: "{ nope", bytes: 6 });
  });

  it("derives the same UUID from the same parts, and another from other parts", () => {
    const id = deterministicId("probe", "order.created", "seq:7");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(deterministicId("probe", "order.created", "seq:7")).toBe(id);
    expect(deterministicId("probe", "order.created", "seq:8")).not.toBe(id);
  });
});

describe("consumer groups of dead letters", () => {
  it("must keep what they give up on themselves: a dead letter about a dead letter would come back to them", async () => {
    const { consumerMixin } = await import("../../mixins/consumer.mixin");
    const handlers = { "message.deadLettered": async () => undefined };
    expect(() => consumerMixin({ group: "watcher", handlers })).toThrow(/must keep what it gives up on itself/);
    expect(() => consumerMixin({ group: "dlq", handlers, keepUnprocessable: async () => undefined })).not.toThrow();
  });
});
