/**
 * exec rules and the dead-letter queue on the embedded default's wiring (one node, in-memory channels, the real
 * PostgreSQL): the rules API and its validation, a built-in rule at work, a rule whose action rejects its parameters
 * (dead letter at once, `exec.failed` through the outbox, the DLQ depth gauge), replay from the REPL command once the
 * rule is fixed, and the DLQ API's answers to bad input.
 */
import { Errors, type Context, type ServiceSchema } from "moleculer";
import type { Client } from "pg";
import { dlqCommand, ruleCommand } from "../../bin/repl-commands";
import { setChannelsReady } from "../../lib/delivery";
import type { Page } from "../../lib/paging";
import type {
  DeadLetter,
  DeadLetterGroup,
  DeadLetterPage,
  Replay,
  ReplayOperation,
} from "../../contracts/dead-letters";
import type { Rule, Task } from "../../contracts/exec";
import type { Product } from "../../contracts/products";
import { registerCustomer } from "../../support/api";
import { type ErrorBody, json, waitFor } from "../../support/nodes";
import { validateOpenApi } from "../support/openapi";
import { withNode } from "../support/suite";

let customer: string;
let product: Product;
let execDb: Client;
let dlqDb: Client;

const ruleCount = async () => Number((await execDb.query("SELECT count(*) FROM rules")).rows[0].count);
const depth = (channel: string) =>
  node.broker.metrics.getMetric("aicunet.dlq.depth")?.get({ channel })?.value as number | undefined;

/** A rule action whose downstream is out: every call fails with a retryable error. */
let outageCalls = 0;
const outageOrders: string[] = [];
const outageService: ServiceSchema = {
  name: "outage",
  actions: {
    notify: {
      triggerable: true,
      params: { orderId: { type: "uuid" } },
      handler(ctx: Context<{ orderId: string }>) {
        outageCalls += 1;
        outageOrders.push(ctx.params.orderId);
        throw new Errors.MoleculerRetryableError("The downstream is unavailable", 503, "DOWNSTREAM_UNAVAILABLE");
      },
    },
  },
};

const node = withNode(
  { SERVICES: "api,auth,products,orders,exec,dlq", DELIVERY_MAX_ATTEMPTS: "2", DELIVERY_RETRY_DELAY: "50" },
  { services: [outageService] },
);
const { send, placeOrder } = node;

beforeAll(async () => {
  customer = await registerCustomer(node.base, "cust@exec.example");
  product = await node.createProduct({
    sku: "EXEC-1",
    name: "Exec widget",
    price: { amount: 500, currency: "EUR" },
    stock: 1000,
  });
  [execDb, dlqDb] = await Promise.all([node.database("exec"), node.database("dlq")]);
});

it("ships a built-in rule that opens a review task for a large order, once", async () => {
  const rules = (await json<Page<Rule>>(await send("GET", "/api/exec/rules"))).rows;
  expect(rules).toEqual([
    expect.objectContaining({ name: "Restock low stock", event: "product.stockChanged", builtIn: true }),
    expect.objectContaining({ name: "Review large orders", event: "order.created", builtIn: true, enabled: true }),
  ]);
  const small = await placeOrder(product.id, "SMALL", { quantity: 1 });
  const large = await placeOrder(product.id, "LARGE", { quantity: 200 });
  const tasks = await waitFor(
    async () => {
      const found = (await json<Page<Task>>(await send("GET", `/api/exec/tasks?subject=${large.id}`))).rows;
      return found.length > 0 ? found : undefined;
    },
    10_000,
    "the review task",
  );
  expect(tasks).toEqual([
    expect.objectContaining({ kind: "order-review", title: "Review a large order", details: expect.any(Object) }),
  ]);
  expect(tasks[0].details).toEqual({ total: { amount: 100_000, currency: "EUR" }, customerId: large.customerId });
  expect((await json<Page<Task>>(await send("GET", `/api/exec/tasks?subject=${small.id}`))).rows).toEqual([]);
});

it("ships a built-in rule that opens a restock task when a product's stock drops under 5", async () => {
  const lowStock = await send("PATCH", `/api/products/${product.id}`, { stock: 3, version: product.version });
  expect(lowStock.status).toBe(200);
  product = await json<Product>(lowStock);
  const tasks = await waitFor(
    async () => {
      const found = (await json<Page<Task>>(await send("GET", `/api/exec/tasks?subject=${product.id}&kind=restock`)))
        .rows;
      return found.length > 0 ? found : undefined;
    },
    10_000,
    "the restock task",
  );
  expect(tasks).toEqual([expect.objectContaining({ details: { sku: "EXEC-1", stock: 3 } })]);
  // A change that leaves enough stock (or does not touch it) opens nothing.
  product = await json<Product>(
    await send("PATCH", `/api/products/${product.id}`, { stock: 50, version: product.version }),
  );
  product = await json<Product>(
    await send("PATCH", `/api/products/${product.id}`, { name: "Renamed", version: product.version }),
  );
  // A sleep, not a wait: time for a task that must not be opened.
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(
    (await json<Page<Task>>(await send("GET", `/api/exec/tasks?subject=${product.id}&kind=restock`))).rows,
  ).toHaveLength(1);
});

describe("rules API", () => {
  const rule = {
    name: "Flag orders to Paris",
    event: "order.created",
    condition: [{ path: "$.payload.order.shippingAddress.city", op: "eq", value: "Paris" }],
    action: "exec.tasks.create",
    params: { kind: "paris", title: "An order to Paris", subject: "$.payload.order.id" },
  };

  it("creates, reads, replaces and deletes a rule", async () => {
    const created = await send("POST", "/api/exec/rules", rule);
    expect(created.status).toBe(201);
    const saved = await json<Rule>(created);
    expect(saved).toMatchObject({ ...rule, enabled: true, builtIn: false, version: 1 });
    expect(created.headers.get("location")).toBe(`/api/exec/rules/${saved.id}`);
    expect(await json<Rule>(await send("GET", `/api/exec/rules/${saved.id}`))).toEqual(saved);

    const replaced = await send("PUT", `/api/exec/rules/${saved.id}`, { ...rule, enabled: false });
    expect(replaced.status).toBe(200);
    expect(await json<Rule>(replaced)).toMatchObject({ enabled: false, version: 2 });

    expect((await send("DELETE", `/api/exec/rules/${saved.id}`)).status).toBe(200);
    expect((await send("GET", `/api/exec/rules/${saved.id}`)).status).toBe(404);
  });

  const badRules: [string, Record<string, unknown>, string[]][] = [
    ["an event that is not catalogued", { event: "order.exploded" }, ["event"]],
    ["an action that is not triggerable", { action: "auth.users.list" }, ["action"]],
    ["an action that does not exist", { action: "nobody.nothing" }, ["action"]],
    [
      "a condition path outside the envelope",
      { condition: [{ path: "order.total", op: "gt", value: 1 }] },
      ["condition[0].path"],
    ],
    ["an unknown operator", { condition: [{ path: "$.payload", op: "like", value: 1 }] }, ["condition[0].op"]],
    ["a name that is not a string", { name: 42 }, ["name"]],
    ["an unknown field", { script: "process.exit()" }, ["script"]],
  ];
  it.each(badRules)("answers 422 for %s, naming the field, and saves nothing", async (_, change, fields) => {
    const before = await ruleCount();
    const res = await send("POST", "/api/exec/rules", { ...rule, name: "Bad rule", ...change });
    expect(res.status).toBe(422);
    const body = await json<ErrorBody>(res);
    expect(body.type).toBe("VALIDATION_ERROR");
    expect((body.data as { field: string }[]).map((problem) => problem.field)).toEqual(expect.arrayContaining(fields));
    expect(await ruleCount()).toBe(before);
  });

  it("lists, disables, enables and deletes rules from the REPL", async () => {
    const rule = await json<Rule>(
      await send("POST", "/api/exec/rules", {
        name: "REPL rule",
        event: "product.stockChanged",
        action: "exec.tasks.create",
        params: { kind: "repl", title: "From the REPL", subject: "$.payload.product.id" },
      }),
    );
    const printed: string[] = [];
    const print = (text: string) => printed.push(text);
    await ruleCommand(node.broker, "list", undefined, print);
    expect(printed[0]).toBe(`${await ruleCount()} rule(s)`);
    expect(printed.some((line) => line.startsWith(`${rule.id}  enabled `))).toBe(true);
    await ruleCommand(node.broker, "disable", rule.id, print);
    expect(printed.at(-1)).toMatch(new RegExp(`^${rule.id}  disabled  REPL rule`));
    expect((await execDb.query("SELECT enabled FROM rules WHERE id = $1", [rule.id])).rows).toEqual([
      { enabled: false },
    ]);
    await ruleCommand(node.broker, "enable", rule.id, print);
    expect((await execDb.query("SELECT enabled FROM rules WHERE id = $1", [rule.id])).rows).toEqual([
      { enabled: true },
    ]);
    await ruleCommand(node.broker, "delete", rule.id, print);
    expect((await execDb.query("SELECT 1 FROM rules WHERE id = $1", [rule.id])).rowCount).toBe(0);
    await expect(ruleCommand(node.broker, "show", rule.id, print)).rejects.toMatchObject({ code: 404 });
  });

  it("answers 409 for a duplicate name and for deleting a built-in rule, 404 for an unknown id", async () => {
    const [builtIn] = (await json<Page<Rule>>(await send("GET", "/api/exec/rules"))).rows;
    expect(builtIn.builtIn).toBe(true);
    const duplicate = await send("POST", "/api/exec/rules", { ...rule, name: builtIn.name });
    expect(duplicate.status).toBe(409);
    expect(await json<ErrorBody>(duplicate)).toMatchObject({ type: "DUPLICATE", data: { field: "name" } });
    expect((await send("DELETE", `/api/exec/rules/${builtIn.id}`)).status).toBe(409);
    expect((await send("GET", "/api/exec/rules/6f1c2a4e-0000-4000-8000-000000000000")).status).toBe(404);
  });

  it("refuses customers: rules and dead letters are for operators", async () => {
    expect((await send("GET", "/api/exec/rules", undefined, customer)).status).toBe(403);
    expect((await send("POST", "/api/exec/rules", rule, customer)).status).toBe(403);
    expect((await send("GET", "/api/dlq", undefined, customer)).status).toBe(403);
  });
});

/** A rule for orders shipped to `shippedTo` whose action always fails validation: its task has no title. */
async function brokenRule(name: string, shippedTo: string, kind: string): Promise<Rule> {
  return json<Rule>(
    await send("POST", "/api/exec/rules", {
      name,
      event: "order.created",
      condition: [{ path: "$.payload.order.shippingAddress.name", op: "eq", value: shippedTo }],
      action: "exec.tasks.create",
      params: { kind, subject: "$.payload.order.id" },
    }),
  );
}

/** Gives a broken rule's action the title it lacked, so a replay of what it dead-lettered succeeds. */
async function fixRule(rule: Rule): Promise<void> {
  const fixed = await send("PUT", `/api/exec/rules/${rule.id}`, {
    name: rule.name,
    event: rule.event,
    condition: rule.condition,
    action: rule.action,
    params: { ...rule.params, title: "Fixed" },
  });
  expect(fixed.status).toBe(200);
}

it("dead-letters an event whose rule action rejects its parameters, publishes exec.failed, and replays from the REPL once fixed", async () => {
  const broken = await brokenRule("Broken rule", "EXECFAIL", "broken");
  const order = await placeOrder(product.id, "EXECFAIL");
  const entry = await waitFor(
    async () => (await json<DeadLetterPage>(await send("GET", "/api/dlq?group=exec&status=PENDING"))).rows[0],
    10_000,
    "the dead letter",
  );
  // A validation error fails the same way every time: no retries.
  expect(entry).toMatchObject({ channel: "order.created", attempts: 1, replayable: true, error: { code: 422 } });
  expect(entry.error.data).toEqual([expect.objectContaining({ field: "title", type: "required" })]);
  expect(depth("order.created")).toBe(1);

  const failed = await waitFor(
    async () => {
      const { rows } = await execDb.query("SELECT envelope FROM outbox WHERE channel = 'exec.failed'");
      return rows[0]?.envelope as { causationId: string; payload: { error: { type: string } } } | undefined;
    },
    10_000,
    "exec.failed",
  );
  expect(failed).toMatchObject({
    causationId: entry.messageId,
    payload: { event: { id: entry.messageId, type: "order.created" }, error: { type: "VALIDATION_ERROR" } },
  });

  const printed: string[] = [];
  await dlqCommand(node.broker, "list", undefined, { group: "exec" }, (text) => printed.push(text));
  expect(printed[0]).toBe("1 dead letter(s)");
  expect(printed[1]).toContain(entry.id);

  await fixRule(broken);
  await dlqCommand(node.broker, "replay", entry.id, {}, (text) => printed.push(text));
  expect(printed.at(-1)).toBe(`Replayed ${entry.id} to order.created (replay 1)`);
  await waitFor(
    async () => {
      const tasks = (await json<Page<Task>>(await send("GET", `/api/exec/tasks?subject=${order.id}&kind=broken`))).rows;
      return tasks.length === 1 ? tasks : undefined;
    },
    10_000,
    "the task of the fixed rule",
  );
  const resolved = await waitFor(
    async () => {
      const current = await json<DeadLetter>(await send("GET", `/api/dlq/${entry.id}`));
      return current.status === "RESOLVED" ? current : undefined;
    },
    10_000,
    "the entry to be resolved",
  );
  expect(resolved).toMatchObject({ replayCount: 1, lastReplayedBy: "system" });
  expect(depth("order.created")).toBe(0);
  expect((await send("POST", `/api/dlq/${entry.id}/replay`)).status).toBe(409);
  await send("DELETE", `/api/exec/rules/${broken.id}`);
});

it("groups dead letters that failed the same way, and replays a group only as the count its operator saw", async () => {
  const broken = await brokenRule("Broken rule for groups", "EXECGROUP", "grouped");
  const orders = [
    await placeOrder(product.id, "EXECGROUP"),
    await placeOrder(product.id, "EXECGROUP"),
    await placeOrder(product.id, "EXECGROUP"),
  ];
  const group = await waitFor(
    async () => {
      const page = await json<Page<DeadLetterGroup>>(await send("GET", "/api/dlq/groups?group=exec"));
      return page.rows.find((row) => row.count === 3);
    },
    15_000,
    "three dead letters in one group",
  );
  expect(group).toMatchObject({
    channel: "order.created",
    group: "exec",
    errorType: "VALIDATION_ERROR",
    summary: "The 'title' field is required.",
    fingerprint: expect.stringMatching(/^[0-9a-f]{32}$/),
  });
  expect([...group.orders].sort()).toEqual(orders.map((order) => order.id).sort());
  // The detail an operator needs is in the sample: the field and what was wrong with it.
  expect(group.sampleError.data).toEqual([expect.objectContaining({ field: "title", type: "required" })]);
  expect(Date.parse(group.firstSeen)).toBeLessThanOrEqual(Date.parse(group.lastSeen));

  // The same failure earlier (the test above) has the same fingerprint; it is resolved, so not in the pending group.
  const pending = `/api/dlq?fingerprint=${group.fingerprint}&status=PENDING`;
  const members = await json<DeadLetterPage>(await send("GET", pending));
  expect(members.total).toBe(3);
  expect(members.rows.every((row) => row.fingerprint === group.fingerprint)).toBe(true);
  expect((await send("GET", "/api/dlq?fingerprint=not-a-fingerprint")).status).toBe(422);
  // An order's dead letters, as its page lists them.
  const ofOrder = await json<DeadLetterPage>(await send("GET", `/api/dlq?orderId=${orders[1].id}`));
  expect(ofOrder.rows).toEqual([expect.objectContaining({ fingerprint: group.fingerprint })]);
  expect((await send("GET", "/api/dlq?orderId=not-an-id")).status).toBe(422);

  // Replaying the group as a different count than the one seen starts nothing.
  const until = new Date().toISOString();
  const selection = { fingerprint: group.fingerprint, until };
  const preview = await json<{ count: number }>(
    await send("GET", `/api/dlq/replays/preview?${new URLSearchParams(selection)}`),
  );
  expect(preview.count).toBe(3);
  const stale = await send("POST", "/api/dlq/replays", { ...selection, expectedCount: 2 });
  expect(stale.status).toBe(409);
  expect(await json<ErrorBody>(stale)).toMatchObject({ data: { expectedCount: 2, actualCount: 3 } });
  expect((await json<DeadLetterPage>(await send("GET", pending))).rows).toEqual(
    members.rows.map(() => expect.objectContaining({ status: "PENDING", replayCount: 0 })),
  );
  expect((await dlqDb.query("SELECT count(*)::int AS n FROM replay_operations")).rows[0].n).toBe(0);

  await fixRule(broken);
  const started = await send("POST", "/api/dlq/replays", { ...selection, expectedCount: 3, ratePerSecond: 50 });
  expect(started.status).toBe(202);
  const operation = await json<ReplayOperation>(started);
  expect(operation).toMatchObject({ status: "RUNNING", total: 3, startedBy: expect.stringMatching(/^user:/) });
  const done = await waitFor(
    async () => {
      const current = await json<ReplayOperation>(await send("GET", `/api/dlq/replays/${operation.id}`));
      return current.outcomes.resolved === 3 ? current : undefined;
    },
    15_000,
    "the group's letters to be resolved",
  );
  expect(done).toMatchObject({
    status: "DONE",
    progress: { waiting: 0, sent: 3, skipped: 0, cancelled: 0 },
    outcomes: { pending: 0, resolved: 3, failed: 0 },
  });
  const groupsLeft = await json<Page<DeadLetterGroup>>(await send("GET", "/api/dlq/groups?group=exec"));
  expect(groupsLeft.rows.map((row) => row.fingerprint)).not.toContain(group.fingerprint);
  await send("DELETE", `/api/exec/rules/${broken.id}`);
});

it("runs a replay operation at its rate, cancels it half-way, and counts what became of each letter", async () => {
  const broken = await brokenRule("Broken rule for operations", "EXECOPS", "operated");
  for (let i = 0; i < 6; i += 1) await placeOrder(product.id, "EXECOPS");
  const mine = "/api/dlq?status=PENDING&search=EXECOPS";
  const letters = await waitFor(
    async () => {
      const page = await json<DeadLetterPage>(await send("GET", mine));
      return page.total === 6 ? page.rows : undefined;
    },
    15_000,
    "six dead letters",
  );
  const selection = { fingerprint: letters[0].fingerprint, search: "EXECOPS", until: new Date().toISOString() };

  // The dry run counts what the operation would touch, and touches nothing.
  const before = (await dlqDb.query("SELECT count(*), max(updated_at) FROM dead_letters")).rows[0];
  const preview = await send("GET", `/api/dlq/replays/preview?${new URLSearchParams(selection)}`);
  expect(preview.status).toBe(200);
  expect(await json<{ count: number; firstIds: string[] }>(preview)).toMatchObject({ count: 6 });
  expect((await dlqDb.query("SELECT count(*), max(updated_at) FROM dead_letters")).rows[0]).toEqual(before);

  // The rule is still broken: every letter sent fails again. One a second, so there is time to cancel.
  const operation = await json<ReplayOperation>(
    await send("POST", "/api/dlq/replays", { ...selection, expectedCount: 6, ratePerSecond: 1 }),
  );
  await waitFor(
    async () => {
      const current = await json<ReplayOperation>(await send("GET", `/api/dlq/replays/${operation.id}`));
      return current.progress.sent >= 2 ? current : undefined;
    },
    15_000,
    "two letters sent",
  );
  const cancel = await send("POST", `/api/dlq/replays/${operation.id}/cancel`);
  expect(cancel.status).toBe(200);
  const cancelled = await json<ReplayOperation>(cancel);
  expect(cancelled).toMatchObject({ status: "CANCELLED", cancelledBy: expect.stringMatching(/^user:/) });
  const { sent } = cancelled.progress;
  expect(sent).toBeGreaterThanOrEqual(2);
  expect(sent).toBeLessThan(6);
  expect(cancelled.progress).toEqual({ waiting: 0, sent, skipped: 0, cancelled: 6 - sent });
  expect((await send("POST", `/api/dlq/replays/${operation.id}/cancel`)).status).toBe(409);

  // The summary counts outcomes: every letter sent failed again, none is counted as replayed.
  const settled = await waitFor(
    async () => {
      const current = await json<ReplayOperation>(await send("GET", `/api/dlq/replays/${operation.id}`));
      return current.outcomes.pending === 0 ? current : undefined;
    },
    15_000,
    "the outcomes of the letters sent",
  );
  expect(settled.outcomes).toEqual({ pending: 0, resolved: 0, failed: sent });
  const results = await json<Page<Replay>>(await send("GET", `/api/dlq/replays/${operation.id}/letters`));
  expect(results.rows.map((row) => row.state)).toEqual([
    ...Array(sent).fill("SENT"),
    ...Array(6 - sent).fill("CANCELLED"),
  ]);
  for (const row of results.rows.slice(sent)) expect(row).toMatchObject({ attempt: null, outcome: null });

  // The letter's lineage names the replay, who sent it, and the error it failed with again.
  const failedAgain = results.rows[0];
  const letter = await json<DeadLetter & { replays: Replay[] }>(
    await send("GET", `/api/dlq/${failedAgain.deadLetterId}`),
  );
  expect(letter).toMatchObject({ status: "PENDING", replayCount: 1 });
  expect(letter.replays).toEqual([
    expect.objectContaining({
      operationId: operation.id,
      state: "SENT",
      attempt: 1,
      replayedBy: cancelled.startedBy,
      outcome: "FAILED",
      outcomeError: expect.objectContaining({ type: "VALIDATION_ERROR" }),
    }),
  ]);
  expect(letter.failures).toHaveLength(2);

  // Fixed, the same selection replays all six: the lineage shows the failed replay, then the one that resolved it.
  await fixRule(broken);
  const again = await json<ReplayOperation>(
    await send("POST", "/api/dlq/replays", { ...selection, until: new Date().toISOString(), expectedCount: 6 }),
  );
  const resolved = await waitFor(
    async () => {
      const current = await json<ReplayOperation>(await send("GET", `/api/dlq/replays/${again.id}`));
      return current.outcomes.resolved === 6 ? current : undefined;
    },
    15_000,
    "the six letters resolved",
  );
  expect(resolved).toMatchObject({ status: "DONE", outcomes: { pending: 0, resolved: 6, failed: 0 } });
  const lineage = (await json<DeadLetter & { replays: Replay[] }>(await send("GET", `/api/dlq/${letter.id}`))).replays;
  expect(lineage.map((replay) => [replay.attempt, replay.outcome])).toEqual([
    [1, "FAILED"],
    [2, "RESOLVED"],
  ]);
  await send("DELETE", `/api/exec/rules/${broken.id}`);
});

it("goes on with a replay operation a stopped node left running", async () => {
  const broken = await brokenRule("Broken rule for a left operation", "EXECLEFT", "left");
  await placeOrder(product.id, "EXECLEFT");
  const [letter] = await waitFor(
    async () => {
      const page = await json<DeadLetterPage>(await send("GET", "/api/dlq?status=PENDING&search=EXECLEFT"));
      return page.total === 1 ? page.rows : undefined;
    },
    15_000,
    "the dead letter",
  );
  await fixRule(broken);
  // As a node that stopped mid-operation left it: running, its letter waiting, started by someone else. This node is
  // still starting as it finds it: its consumers have not subscribed yet.
  const operationId = crypto.randomUUID();
  setChannelsReady(node.broker, false);
  try {
    await dlqDb.query(
      `INSERT INTO replay_operations (id, selection, total, rate_per_second, started_by)
       VALUES ($1, '{"until": "2026-01-01T00:00:00Z"}', 1, 5, 'user:elsewhere')`,
      [operationId],
    );
    await dlqDb.query(
      "INSERT INTO replays (id, dead_letter_id, operation_id, position, state) VALUES ($1, $2, $3, 1, 'WAITING')",
      [crypto.randomUUID(), letter.id, operationId],
    );
    // Longer than the runner's idle poll: a letter sent now would reach no consumer, so none is sent.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const { rows } = await dlqDb.query("SELECT state FROM replays WHERE operation_id = $1", [operationId]);
    expect(rows).toEqual([{ state: "WAITING" }]);
  } finally {
    setChannelsReady(node.broker, true);
  }
  const done = await waitFor(
    async () => {
      const current = await json<ReplayOperation>(await send("GET", `/api/dlq/replays/${operationId}`));
      return current.outcomes.resolved === 1 ? current : undefined;
    },
    15_000,
    "the left operation to be done",
  );
  expect(done).toMatchObject({ status: "DONE", startedBy: "user:elsewhere" });
  expect(await json<DeadLetter>(await send("GET", `/api/dlq/${letter.id}`))).toMatchObject({
    status: "RESOLVED",
    lastReplayedBy: "user:elsewhere",
  });
  await send("DELETE", `/api/exec/rules/${broken.id}`);
});

it("retries a rule action that keeps failing transiently, then dead-letters the event and publishes exec.failed", async () => {
  const callsBefore = outageCalls;
  const rule = await json<Rule>(
    await send("POST", "/api/exec/rules", {
      name: "Outage rule",
      event: "order.created",
      condition: [{ path: "$.payload.order.shippingAddress.name", op: "eq", value: "OUTAGE" }],
      action: "outage.notify",
      params: { orderId: "$.payload.order.id" },
    }),
  );
  const order = await placeOrder(product.id, "OUTAGE");
  const entry = await waitFor(
    async () =>
      (await json<DeadLetterPage>(await send("GET", "/api/dlq?group=exec&status=PENDING&search=OUTAGE"))).rows[0],
    15_000,
    "the dead letter",
  );
  // Every attempt the policy allows (DELIVERY_MAX_ATTEMPTS), each reaching the action, then parked with its error.
  expect(entry).toMatchObject({
    channel: "order.created",
    attempts: 2,
    replayable: true,
    error: { code: 503, type: "DOWNSTREAM_UNAVAILABLE" },
  });
  expect(outageCalls - callsBefore).toBeGreaterThanOrEqual(2);
  expect(outageOrders.every((id) => id === order.id)).toBe(true);
  const failed = await waitFor(
    async () => {
      const { rows } = await execDb.query(
        "SELECT envelope FROM outbox WHERE channel = 'exec.failed' AND envelope->>'causationId' = $1",
        [entry.messageId],
      );
      return rows[0]?.envelope as { payload: { attempts: number; error: { type: string } } } | undefined;
    },
    10_000,
    "exec.failed",
  );
  expect(failed.payload).toMatchObject({ attempts: 2, error: { type: "DOWNSTREAM_UNAVAILABLE" } });
  // Discarded by an operator: gone from the queue, kept as DISCARDED.
  expect((await send("DELETE", `/api/dlq/${entry.id}`, { reason: "downstream retired" })).status).toBe(200);
  expect(await json<DeadLetter>(await send("GET", `/api/dlq/${entry.id}`))).toMatchObject({ status: "DISCARDED" });
  await send("DELETE", `/api/exec/rules/${rule.id}`);
});

it("documents the rules and dead-letter routes in a valid OpenAPI 3.1 document", async () => {
  const doc = await json<{ paths: Record<string, unknown> }>(await send("GET", "/api/openapi.json"));
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining(["/api/exec/rules", "/api/exec/rules/{id}", "/api/dlq", "/api/dlq/replays"]),
  );
  expect(await validateOpenApi(doc)).toEqual({ valid: true });
});

describe("dead-letter API on bad input", () => {
  const cases: [string, string, string, unknown, number][] = [
    ["a huge pageSize", "GET", "/api/dlq?pageSize=1000", undefined, 422],
    ["an unknown status", "GET", "/api/dlq?status=GONE", undefined, 422],
    ["an id that is no UUID", "GET", "/api/dlq/1%20OR%201=1", undefined, 422],
    ["an unknown id", "GET", "/api/dlq/6f1c2a4e-0000-4000-8000-000000000000", undefined, 404],
    ["a replay operation without the time of the view", "POST", "/api/dlq/replays", { expectedCount: 1 }, 422],
    ["a replay operation without the confirmed count", "POST", "/api/dlq/replays", { until: "2026-01-01" }, 422],
    [
      "a replay operation of a huge count",
      "POST",
      "/api/dlq/replays",
      { until: "2026-01-01", expectedCount: 1e308 },
      422,
    ],
    [
      "a replay operation faster than allowed",
      "POST",
      "/api/dlq/replays",
      { until: "2026-01-01", expectedCount: 1, ratePerSecond: 1000 },
      422,
    ],
    [
      "a replay preview with NUL in its search",
      "GET",
      "/api/dlq/replays/preview?until=2026-01-01&search=a%00b",
      undefined,
      422,
    ],
    [
      "cancelling an unknown replay operation",
      "POST",
      "/api/dlq/replays/6f1c2a4e-0000-4000-8000-000000000000/cancel",
      undefined,
      404,
    ],
    ["an unknown replay operation", "GET", "/api/dlq/replays/6f1c2a4e-0000-4000-8000-000000000000", undefined, 404],
    ["replaying an unknown id", "POST", "/api/dlq/6f1c2a4e-0000-4000-8000-000000000000/replay", undefined, 404],
    ["discarding an unknown id", "DELETE", "/api/dlq/6f1c2a4e-0000-4000-8000-000000000000", { reason: "x" }, 404],
    ["discarding without a reason", "DELETE", "/api/dlq/6f1c2a4e-0000-4000-8000-000000000000", {}, 422],
    ["discarding with a blank reason", "DELETE", "/api/dlq/6f1c2a4e-0000-4000-8000-000000000000", { reason: " " }, 422],
  ];
  it.each(cases)("answers %s with the right 4xx and changes nothing", async (name, method, path, body, status) => {
    const state = async () =>
      (
        await dlqDb.query(
          "SELECT count(*), max(updated_at), (SELECT count(*) FROM replay_operations) AS operations FROM dead_letters",
        )
      ).rows[0];
    const before = await state();
    const res = await send(method, path, body);
    expect(res.status).toBe(status);
    const type = status === 404 ? "NOT_FOUND" : /NUL/.test(name) ? "UNSTORABLE_TEXT" : "VALIDATION_ERROR";
    expect((await json<ErrorBody>(res)).type).toBe(type);
    expect(await state()).toEqual(before);
  });

  it("treats SQL in a search as text", async () => {
    const before = (await dlqDb.query("SELECT count(*) FROM dead_letters")).rows[0].count;
    const res = await send("GET", `/api/dlq?search=${encodeURIComponent("'; DROP TABLE dead_letters; --")}`);
    expect(res.status).toBe(200);
    expect(await json<DeadLetterPage>(res)).toMatchObject({ total: 0, rows: [] });
    expect((await dlqDb.query("SELECT count(*) FROM dead_letters")).rows[0].count).toBe(before);
  });
});
