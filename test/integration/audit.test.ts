/**
 * The audit trail on the embedded default's wiring (one node, in-memory channels, the real PostgreSQL): one record
 * per REST write with who, what, the request id and redacted parameters; domain events recorded too and kept as the
 * event store; the tables refuse changes; a record edited behind its back is named by verify (REST and REPL).
 */
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
import { createNode } from "../../bin/node";
import { auditCommand } from "../../bin/repl-commands";
import { QueryTypes, type Sequelize } from "sequelize";
import type { ReadinessCheck } from "../../contracts/health";
import { databaseUrlFor, writerRoleOf } from "../../lib/database";
import { createEnvelope } from "../../lib/events";
import type { CursorPage, Page } from "../../lib/paging";
import type { OutboxMethods } from "../../mixins/outbox.mixin";
import type { AuditPage, AuditRecord, ChainVerdict, RegisteredSchema, StoredEvent } from "../../contracts/audit";
import type { Order } from "../../contracts/orders";
import type { Product } from "../../contracts/products";
import { login, orderBody, registerCustomer } from "../../support/api";
import { dropScopeDatabases, isolation, json, testConfig, waitFor } from "../../support/nodes";
import { withNode } from "../support/suite";

const node = withNode({ SERVICES: "api,auth,products,orders,audit" });
const { send } = node;
let adminId: string;
let auditDb: Client;
let auditUrl: string;

/** The gateway's request id of each labelled request (it makes its own; a client's `X-Request-Id` is only logged). */
const requestIds = new Map<string, string>();
const idOf = (label: string) => requestIds.get(label)!;

/** The answer to a request, its request id remembered under `label`. */
async function labelled(label: string, request: Promise<Response>): Promise<Response> {
  const res = await request;
  requestIds.set(label, res.headers.get("x-request-id")!);
  return res;
}

async function recordsOf(label: string, count: number): Promise<AuditPage["rows"]> {
  const requestId = idOf(label);
  return waitFor(
    async () => {
      const page = await json<AuditPage>(await send("GET", `/api/audit?requestId=${requestId}`));
      return page.total >= count ? page.rows : undefined;
    },
    10_000,
    `${count} audit record(s) of ${label}`,
  );
}

beforeAll(async () => {
  adminId = (await json<{ id: string }>(await send("GET", "/api/auth/me"))).id;
  auditUrl = databaseUrlFor("audit", node.cfg);
  auditDb = await node.database("audit");
});

it("records every REST write once: who, what, which entity, the request id and the parameters", async () => {
  const created = await labelled(
    "audit-create",
    send("POST", "/api/products", { sku: "AUD-1", name: "Audited", price: { amount: 100, currency: "EUR" } }),
  );
  const product = await json<Product>(created);
  const patched = await labelled(
    "audit-patch",
    send("PATCH", `/api/products/${product.id}`, { stock: 9, version: product.version }),
  );
  expect(patched.status).toBe(200);
  expect((await labelled("audit-delete", send("DELETE", `/api/products/${product.id}`))).status).toBe(204);

  for (const [label, name] of [
    ["audit-create", "products.create"],
    ["audit-patch", "products.update"],
    ["audit-delete", "products.remove"],
  ]) {
    const record = (await recordsOf(label, 1)).find((found) => found.kind === "action");
    expect(record).toMatchObject({
      kind: "action",
      name,
      actor: { type: "user", id: adminId },
      entity: { type: "product", id: product.id },
      requestId: idOf(label),
    });
  }
  const patch = (await recordsOf("audit-patch", 1)).find((found) => found.kind === "action")!;
  // What was asked, the product as it was, and as it became.
  expect(patch.change).toEqual({
    params: { id: product.id, stock: 9, version: product.version },
    before: expect.objectContaining({ id: product.id, stock: product.stock, version: product.version }),
    after: expect.objectContaining({ id: product.id, stock: 9, version: product.version + 1 }),
  });
  const removal = (await recordsOf("audit-delete", 1)).find((found) => found.kind === "action")!;
  expect(removal.change).toEqual({
    params: { id: product.id },
    before: expect.objectContaining({ id: product.id, stock: 9, name: "Audited" }),
  });
  // Exactly one each (the stock change's event is recorded beside it), also after time for duplicates: a sleep, not
  // a wait, as a duplicate must not appear.
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const label of ["audit-create", "audit-patch", "audit-delete"]) {
    const { rows } = await auditDb.query(
      "SELECT count(*)::int AS n FROM audit_records WHERE request_id = $1 AND kind = 'action'",
      [idOf(label)],
    );
    expect(rows[0].n).toBe(1);
  }
});

it("redacts secrets, and records domain events beside the actions that caused them", async () => {
  const token = await registerCustomer(node.base, "audited@example.com");
  const { rows } = await auditDb.query("SELECT change FROM audit_records WHERE name = 'auth.register'");
  expect(rows[0].change).toMatchObject({ params: { email: "audited@example.com", password: "[redacted]" } });

  const product = await json<Product>(
    await send("POST", "/api/products", {
      sku: "AUD-2",
      name: "Ordered",
      price: { amount: 300, currency: "EUR" },
      stock: 10,
    }),
  );
  const order = await json<Order>(
    await labelled("audit-order", send("POST", "/api/orders", orderBody(product.id, "Ada"), token)),
  );
  const records = await recordsOf("audit-order", 2);
  expect(records.map((record) => [record.kind, record.name]).sort()).toEqual([
    ["action", "orders.create"],
    ["event", "order.created"],
  ]);
  expect(records.find((record) => record.kind === "event")).toMatchObject({
    actor: { type: "service", id: "orders" },
    entity: { type: "order", id: order.id },
  });
});

it("keeps domain events as an event store: in order globally, and per stream", async () => {
  // `limit`, the deprecated name of `pageSize`, still works.
  const first = await json<CursorPage<StoredEvent>>(await send("GET", "/api/audit/events?after=0&limit=1000"));
  expect(first).toMatchObject({ pageSize: 1000, hasMore: false });
  const created = first.rows.find((event) => event.envelope.type === "order.created")!;
  // A second event of the same order's stream: its cancellation.
  expect((await send("POST", `/api/orders/${created.streamId}/cancel`, {})).status).toBe(200);
  const stream = await waitFor(
    async () => {
      const events = await json<CursorPage<StoredEvent>>(
        await send("GET", `/api/audit/streams/order/${created.streamId}`),
      );
      return events.rows.length === 2 ? events.rows : undefined;
    },
    10_000,
    "the order's second event",
  );
  expect(stream.map((event) => [event.streamType, event.streamVersion, event.envelope.type])).toEqual([
    ["order", 1, "order.created"],
    ["order", 2, "order.statusChanged"],
  ]);
  expect(stream[0].position).toBe(created.position);
  expect(stream[1].envelope.payload).toMatchObject({ order: { previousStatus: "PENDING", status: "CANCELLED" } });

  const all = (await json<CursorPage<StoredEvent>>(await send("GET", "/api/audit/events?after=0&pageSize=1000"))).rows;
  expect(all.map((event) => event.envelope.type).sort()).toEqual([
    "order.created",
    "order.statusChanged",
    "product.stockChanged",
  ]);
  const positions = all.map((event) => event.position);
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
  // Read one at a time, each page's cursor leads to the next; past the end the cursor stays where it was.
  const walked: number[] = [];
  let cursor = "0";
  for (;;) {
    const page = await json<CursorPage<StoredEvent>>(await send("GET", `/api/audit/events?after=${cursor}&pageSize=1`));
    walked.push(...page.rows.map((event) => event.position));
    if (!page.hasMore) {
      expect(page.nextCursor).toBe(String(positions.at(-1)));
      break;
    }
    cursor = page.nextCursor;
  }
  expect(walked).toEqual(positions);
  const later = await json<CursorPage<StoredEvent>>(await send("GET", `/api/audit/events?after=${positions.at(-1)}`));
  expect(later).toEqual({ rows: [], pageSize: 100, nextCursor: String(positions.at(-1)), hasMore: false });
  await expect(auditDb.query("DELETE FROM events")).rejects.toThrow(/append-only/);
});

it("writes as a role that may only add to the trail and the event store, and cannot switch their guard off", async () => {
  const { sequelize } = node.broker.getLocalService("audit") as unknown as { sequelize: Sequelize };
  const [session] = await sequelize.query<{ role: string }>("SELECT current_user AS role", {
    type: QueryTypes.SELECT,
  });
  expect(session.role).toBe(writerRoleOf(auditUrl));
  // Refused by the missing privilege itself, before any trigger is asked.
  await expect(sequelize.query("UPDATE audit_records SET name = 'x'")).rejects.toThrow(/permission denied/);
  await expect(sequelize.query("DELETE FROM events")).rejects.toThrow(/permission denied/);
  await expect(sequelize.query("TRUNCATE audit_records")).rejects.toThrow(/permission denied/);
  await expect(sequelize.query("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update")).rejects.toThrow(
    /must be owner/,
  );
  // Readiness checks the same of the role, so a node whose trail could be rewritten is never ready.
  const ready = await json<{ checks: { name: string; ok: boolean }[] }>(await fetch(`${node.base}/health/ready`));
  expect(ready.checks).toContainEqual(expect.objectContaining({ name: "database:audit", ok: true }));
});

it("never pools a connection acting as the owner, even one a readiness probe opened while the service started", async () => {
  const starting = isolation();
  let startingNode: ServiceBroker | undefined;
  try {
    startingNode = await createNode(testConfig(starting, { SERVICES: "audit" }), { broker: { logger: false } });
    const audit = startingNode.getLocalService("audit") as unknown as {
      readinessChecks(): Promise<ReadinessCheck[]>;
    };
    // Probed from before the database exists until the service has started.
    const started = startingNode.start();
    const whileStarting: ReadinessCheck[] = [];
    while (!startingNode.started) {
      whileStarting.push(...(await audit.readinessChecks()));
      // Often enough to land inside the migrations, not so often that opening connections starves PostgreSQL.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await started;
    // Not ready while the database or the role did not exist yet, but never connected as one that may rewrite.
    expect(whileStarting.filter((check) => !check.ok).length).toBeGreaterThan(0);
    expect(whileStarting.filter((check) => /may change/.test(check.error ?? ""))).toEqual([]);
    // Several probes at once take several of the pool's connections, whenever each was opened.
    for (let round = 0; round < 5; round += 1) {
      const rounds = await Promise.all(Array.from({ length: 4 }, () => audit.readinessChecks()));
      expect(rounds.flat().filter((check) => !check.ok)).toEqual([]);
    }
  } finally {
    await startingNode?.stop();
    await dropScopeDatabases(starting.prefix);
  }
});

it("refuses changes to records, and verify names a record edited behind its back", async () => {
  await expect(auditDb.query("UPDATE audit_records SET name = 'x'")).rejects.toThrow(/append-only/);
  await expect(auditDb.query("DELETE FROM audit_records")).rejects.toThrow(/append-only/);
  const before = await json<ChainVerdict>(await send("GET", "/api/audit/verify"));
  expect(before).toMatchObject({ valid: true });
  expect(before.checked).toBeGreaterThanOrEqual(6);

  const { rows } = await auditDb.query<{ seq: string }>("SELECT seq FROM audit_records WHERE request_id = $1", [
    idOf("audit-patch"),
  ]);
  const seq = Number(rows[0].seq);
  // Someone with the power to disable the guard edits a record.
  await auditDb.query("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update");
  await auditDb.query(`UPDATE audit_records SET change = '{"stock": 900}' WHERE seq = $1`, [seq]);
  await auditDb.query("ALTER TABLE audit_records ENABLE TRIGGER audit_records_no_update");

  const after = await json<ChainVerdict>(await send("GET", "/api/audit/verify"));
  expect(after).toMatchObject({ valid: false, brokenAt: { seq, reason: "content changed" } });
  const printed: string[] = [];
  await auditCommand(node.broker, "verify", (text) => printed.push(text));
  expect(printed[0]).toMatch(new RegExp(`^The audit chain is broken at record ${seq} \\(.+\\): content changed`));
});

it("finds records by the start of their name, and leaves one name out on request", async () => {
  const all = async (query: string) => {
    const page = await json<AuditPage>(await send("GET", `/api/audit?pageSize=100&${query}`));
    return page.rows.map((record) => record.name);
  };
  const products = await all("namePrefix=products.");
  expect(products.length).toBeGreaterThan(0);
  expect(products.every((name) => name.startsWith("products."))).toBe(true);
  // A LIKE wildcard in the prefix is a character like any other: nothing is named "products%".
  expect(await all("namePrefix=products%25")).toEqual([]);
  expect(await all("namePrefix=products_")).toEqual([]);
  const withoutCreates = await all("namePrefix=products.&excludeName=products.create");
  expect(withoutCreates).not.toContain("products.create");
  expect(withoutCreates.length).toBe(products.filter((name) => name !== "products.create").length);
});

it("names the users its records name, for those who read them, and nothing else of the accounts", async () => {
  const unknown = "6f1c2a4e-0000-4000-8000-000000000000";
  const names = await send("GET", `/api/auth/users/names?ids=${adminId},${unknown}`);
  expect(names.status).toBe(200);
  const me = await json<{ displayName: string }>(await send("GET", "/api/auth/me"));
  expect(await json(names)).toEqual({ [adminId]: me.displayName });
  for (const ids of ["-".repeat(36), `${adminId},`, Array(101).fill(adminId).join(","), "x\u0000"]) {
    const bad = await send("GET", `/api/auth/users/names?ids=${encodeURIComponent(ids)}`);
    expect(bad.status).toBe(422);
  }
  const customer = await registerCustomer(node.base, "named@example.com");
  expect((await send("GET", `/api/auth/users/names?ids=${adminId}`, undefined, customer)).status).toBe(403);
});

it("is for auditors only, and answers bad filters with 422", async () => {
  const customer = await login(node.base, { email: "audited@example.com", password: "a-long-enough-password" });
  expect((await send("GET", "/api/audit", undefined, customer)).status).toBe(403);
  expect((await send("GET", "/api/audit?pageSize=1000")).status).toBe(422);
  expect((await send("GET", "/api/audit?from=yesterday")).status).toBe(422);
});

it("answers one record by its id, as the list has it, its place in the chain included; an unknown id is a 404", async () => {
  const listed = (await recordsOf("audit-patch", 1)).find((found) => found.kind === "action")!;
  const one = await send("GET", `/api/audit/${listed.id}`);
  expect(one.status).toBe(200);
  const record = await json<AuditRecord>(one);
  expect(record).toEqual(listed);
  expect(record.hash).toMatch(/^[0-9a-f]{64}$/);
  expect((await send("GET", "/api/audit/6f1c2a4e-0000-4000-8000-000000000000")).status).toBe(404);
  expect((await send("GET", "/api/audit/not-a-uuid")).status).toBe(422);
  const customer = await login(node.base, { email: "audited@example.com", password: "a-long-enough-password" });
  expect((await send("GET", `/api/audit/${listed.id}`, undefined, customer)).status).toBe(403);
});

describe("schema registry", () => {
  const register = (body: unknown, token?: string) => send("POST", "/api/audit/schemas", body, token);
  const counted = {
    type: "inventory.counted",
    version: 1,
    payload: { sku: { type: "string", min: 1 }, quantity: { type: "number", integer: true }, $$strict: true },
  };

  it("holds the platform's own catalogue, registered at start", async () => {
    const res = await send("GET", "/api/audit/schemas?type=order.created");
    expect(res.status).toBe(200);
    const {
      rows: [schema],
    } = await json<Page<RegisteredSchema>>(res);
    expect(schema).toMatchObject({ type: "order.created", version: 1, registeredBy: "system:catalogue" });
    expect(schema.payload).toHaveProperty("order.props.total.props.currency.pattern", "^[A-Z]{3}$");
  });

  it("registers a new type, takes a retry as a no-op, and adds a compatible version", async () => {
    const created = await register(counted);
    expect(created.status).toBe(201);
    expect(await json<RegisteredSchema>(created)).toMatchObject({ type: "inventory.counted", version: 1 });
    expect((await register(counted)).status).toBe(200);
    const v2 = {
      ...counted,
      version: 2,
      payload: { ...counted.payload, location: { type: "string", optional: true } },
    };
    expect((await register(v2)).status).toBe(201);
    const { rows: versions } = await json<Page<RegisteredSchema>>(
      await send("GET", "/api/audit/schemas?type=inventory.counted"),
    );
    expect(versions.map((schema) => schema.version)).toEqual([1, 2]);
    expect(versions[1].registeredBy).toBe(`user:${adminId}`);
  });

  it("is what producers publish against: a registered type passes, an unregistered one or a payload off it is refused", async () => {
    // The orders service's outbox, whose built-in catalogue has no inventory events: only the registry knows them.
    const orders = node.broker.getLocalService("orders") as unknown as { sequelize: Sequelize } & Pick<
      OutboxMethods,
      "enqueueEvent"
    >;
    const correlationId = `registry-${Date.now()}`;
    const publish = (type: string, payload: object, version = 1) =>
      orders.sequelize.transaction((transaction) =>
        orders.enqueueEvent(transaction, createEnvelope(type, payload, { source: "orders", correlationId, version })),
      );
    await expect(publish("inventory.counted", { sku: "A-1", quantity: 3, location: "hall 2" }, 2)).resolves.toBe(
      undefined,
    );
    await expect(publish("inventory.counted", { sku: "A-1", quantity: "three" })).rejects.toMatchObject({
      code: 422,
      data: [expect.objectContaining({ field: "payload.quantity" })],
    });
    await expect(publish("inventory.recounted", { sku: "A-1" })).rejects.toMatchObject({
      code: 422,
      data: [expect.objectContaining({ field: "type", type: "unregisteredEvent" })],
    });
    await expect(publish("inventory.counted", { sku: "A-1", quantity: 1 }, 9)).rejects.toMatchObject({ code: 422 });
    // Only the registered event reached the outbox; the refused ones left nothing behind.
    const ordersDb = new Client({ connectionString: databaseUrlFor("orders", node.cfg) });
    await ordersDb.connect();
    const { rows } = await ordersDb
      .query("SELECT channel FROM outbox WHERE envelope->>'correlationId' = $1", [correlationId])
      .finally(() => ordersDb.end());
    expect(rows).toEqual([{ channel: "inventory.counted" }]);
  });

  it("refuses an incompatible version naming the fields, a skipped or rewritten version, and a broken schema", async () => {
    const incompatible = await register({
      type: "inventory.counted",
      version: 3,
      payload: { sku: { type: "number" }, counter: { type: "string" }, $$strict: true },
    });
    expect(incompatible.status).toBe(409);
    const body = await json<{ type: string; data: { problems: { field: string; type: string }[] } }>(incompatible);
    expect(body.type).toBe("INCOMPATIBLE_SCHEMA");
    // In no particular order: the registry stores schemas as jsonb, which orders keys its own way.
    expect(body.data.problems.map((problem) => `${problem.field} ${problem.type}`).sort()).toEqual([
      "payload.counter requiredFieldAdded",
      "payload.location fieldRemoved",
      "payload.quantity fieldRemoved",
      "payload.sku typeChanged",
    ]);

    const skipped = await register({ ...counted, version: 5 });
    expect(skipped.status).toBe(409);
    expect(await json<{ type: string; data: unknown }>(skipped)).toMatchObject({
      type: "SCHEMA_VERSION_CONFLICT",
      data: { expectedVersion: 3 },
    });
    const rewritten = await register({ ...counted, payload: { sku: { type: "string" } } });
    expect(rewritten.status).toBe(409);

    const broken = await register({
      type: "inventory.audited",
      version: 1,
      payload: { sku: { type: "no-such-rule" } },
    });
    expect(broken.status).toBe(422);
    expect(await json<{ data: { field: string }[] }>(broken)).toMatchObject({ data: [{ field: "payload" }] });
    const badType = await register({ type: "Not A Type", version: 1, payload: {} });
    expect(badType.status).toBe(422);

    const { rows } = await auditDb.query("SELECT type, version FROM event_schemas WHERE type LIKE 'inventory.%'");
    expect(rows).toHaveLength(2);
    await expect(auditDb.query("DELETE FROM event_schemas WHERE type = 'inventory.counted'")).rejects.toThrow(
      /append-only/,
    );
  });

  it("lets only holders of schemas:write register", async () => {
    const customer = await registerCustomer(node.base, "schemas-customer@example.com");
    expect((await register({ ...counted, type: "inventory.moved" }, customer)).status).toBe(403);
  });
});
