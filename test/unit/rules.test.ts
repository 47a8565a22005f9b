import { createEnvelope } from "../../lib/events";
import { mapParams, matches, valueAt } from "../../lib/rules";

const envelope = createEnvelope(
  "order.created",
  { order: { id: "o-1", total: { amount: 150_000, currency: "EUR" }, lines: [{ sku: "A" }], note: null } },
  { source: "orders", correlationId: "req-1" },
);

describe("exec rules", () => {
  it("reads values at paths from the envelope, undefined where a step is missing", () => {
    expect(valueAt(envelope, "$.payload.order.total.amount")).toBe(150_000);
    expect(valueAt(envelope, "$.correlationId")).toBe("req-1");
    expect(valueAt(envelope, "$.payload.order.missing.deeper")).toBeUndefined();
    expect(valueAt(envelope, "$.payload.order.constructor")).toBeUndefined();
  });

  it.each([
    [[{ path: "$.payload.order.total.amount", op: "gte", value: 100_000 }], true],
    [[{ path: "$.payload.order.total.amount", op: "lt", value: 100_000 }], false],
    [[{ path: "$.payload.order.total.currency", op: "in", value: ["EUR", "USD"] }], true],
    [[{ path: "$.payload.order.total.currency", op: "ne", value: "EUR" }], false],
    [[{ path: "$.payload.order.note", op: "exists" }], false],
    [[{ path: "$.payload.order.id", op: "exists" }], true],
    [[{ path: "$.payload.order.total.amount", op: "gt", value: "100" }], false],
    [[], true],
    [
      [
        { path: "$.payload.order.total.amount", op: "gt", value: 1 },
        { path: "$.payload.order.id", op: "eq", value: "o-2" },
      ],
      false,
    ],
  ] as const)("evaluates %j as %s", (conditions, expected) => {
    expect(matches(conditions, envelope)).toBe(expected);
  });

  it("maps parameters from paths, recursively, and keeps literals", () => {
    expect(
      mapParams(
        {
          kind: "review",
          subject: "$.payload.order.id",
          details: { total: "$.payload.order.total", tags: ["$.id", 3] },
        },
        envelope,
      ),
    ).toEqual({
      kind: "review",
      subject: "o-1",
      details: { total: { amount: 150_000, currency: "EUR" }, tags: [envelope.id, 3] },
    });
    expect(mapParams("$ not a path", envelope)).toBe("$ not a path");
  });
});
