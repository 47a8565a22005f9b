import { deepDeadLetterQueues, lostNodes, notificationText, reconcile } from "../../lib/alerts";

const now = new Date("2026-11-25T12:00:00Z");
const minutesAgo = (minutes: number) => new Date(now.getTime() - minutes * 60_000);
const COOLDOWN = 10 * 60_000;

describe("reconcile", () => {
  it("opens and notifies a key that starts firing", () => {
    expect(reconcile([{ key: "a", summary: "A is wrong" }], [], new Map(), now, COOLDOWN)).toEqual({
      open: [{ key: "a", summary: "A is wrong", notify: true }],
      resolve: [],
    });
  });

  it("changes nothing while an open incident keeps firing (one alert per incident)", () => {
    const open = [{ id: "i1", key: "a", notified: true }];
    expect(reconcile([{ key: "a", summary: "A is worse" }], open, new Map(), now, COOLDOWN)).toEqual({
      open: [],
      resolve: [],
    });
  });

  it("resolves an incident whose key stopped firing, with a notice only if its opening was sent", () => {
    const open = [
      { id: "i1", key: "a", notified: true },
      { id: "i2", key: "b", notified: false },
      { id: "i3", key: "c", notified: true },
    ];
    expect(reconcile([{ key: "c", summary: "C" }], open, new Map(), now, COOLDOWN).resolve).toEqual([
      { id: "i1", key: "a", notify: true },
      { id: "i2", key: "b", notify: false },
    ]);
  });

  it("opens a relapse within the cool-down without notifying, and notifies once it has passed", () => {
    const firing = [{ key: "a", summary: "A" }];
    expect(reconcile(firing, [], new Map([["a", minutesAgo(3)]]), now, COOLDOWN).open).toEqual([
      { key: "a", summary: "A", notify: false },
    ]);
    expect(reconcile(firing, [], new Map([["a", minutesAgo(10)]]), now, COOLDOWN).open).toEqual([
      { key: "a", summary: "A", notify: true },
    ]);
  });

  it("opens one incident for a key reported twice", () => {
    const firing = [
      { key: "a", summary: "first" },
      { key: "a", summary: "second" },
    ];
    expect(reconcile(firing, [], new Map(), now, COOLDOWN).open).toEqual([
      { key: "a", summary: "first", notify: true },
    ]);
  });
});

describe("rules", () => {
  it("counts pending dead letters per channel against the threshold", () => {
    const stats = [
      { channel: "order.created", group: "exec", status: "PENDING", count: 2 },
      { channel: "order.created", group: "sagas", status: "PENDING", count: 1 },
      { channel: "order.created", group: "exec", status: "DISCARDED", count: 9 },
      { channel: "log.batch", group: "logs", status: "PENDING", count: 1 },
    ];
    expect(deepDeadLetterQueues(stats, 2)).toEqual([
      { key: "order.created", summary: "3 dead letter(s) pending on order.created" },
    ]);
  });

  it("reports only nodes the cluster health calls lost", () => {
    const nodes = [
      { nodeID: "crashed", state: "lost" },
      { nodeID: "stopped-cleanly", state: "left" },
      { nodeID: "came-back", state: "up" },
    ];
    expect(lostNodes(nodes)).toEqual([{ key: "crashed", summary: "Node crashed is gone (lost unexpectedly)" }]);
  });
});

it("writes the same subject for email and chat, with the resolution time once resolved", () => {
  const incident = {
    rule: "dlq-depth",
    key: "x",
    summary: "1 dead letter(s)",
    openedAt: minutesAgo(5),
    resolvedAt: now,
  };
  const text = notificationText("resolved", incident);
  expect(text.subject).toBe("[AiCUnet] RESOLVED dlq-depth: 1 dead letter(s)");
  expect(text.body.split("\n")).toEqual([
    "RESOLVED: 1 dead letter(s)",
    "Rule: dlq-depth (x)",
    "Since: 2026-11-25T11:55:00.000Z",
    "Resolved: 2026-11-25T12:00:00.000Z",
  ]);
});
