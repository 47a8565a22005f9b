/**
 * Text PostgreSQL cannot store (U+0000, lone surrogates) behind the gateway: calls, messages and spans that never
 * passed its check. An audited call holding a NUL is recorded and the chain verifies; a text column (raw SQL or a
 * Sequelize model) refuses it with a 422 and nothing changes; the dlq stores a dead letter holding one, and keeps one it
 * cannot read as raw text instead of dead-lettering its own records; a log batch holding one is stored; a span batch
 * keeps its good spans when one is bad. On both wirings: the in-memory channels of the single-process default and
 * NATS JetStream.
 */
import type { ServiceBroker } from "moleculer";
import { Client } from "pg";
import { databaseUrlFor } from "../../lib/database";
import { deadLetterEnvelope } from "../../lib/delivery";
import { createEnvelope } from "../../lib/events";
import { SYSTEM_CALLER } from "../../lib/permissions";
import type { ExportedSpan } from "../../lib/spans";
import type { ChainVerdict } from "../../contracts/audit";
import { dropScopeDatabases, isolation, testConfig, testNatsUrl, waitFor } from "../../support/nodes";
import { startInProcessNode } from "../support/nodes";

const asSystem = { meta: { caller: SYSTEM_CALLER } };

describe.each([
  ["in-memory channels", {}],
  ["NATS JetStream", { TRANSPORTER: testNatsUrl() }],
])("on %s", (_, wiring: Record<string, string>) => {
  const scope = isolation();
  let broker: ServiceBroker;
  let auditDb: Client;
  let dlqDb: Client;
  let logsDb: Client;

  beforeAll(async () => {
    // One delivery attempt: a message that cannot be stored is given up on at once.
    const cfg = testConfig(scope, { SERVICES: "audit,dlq,logs,products", DELIVERY_MAX_ATTEMPTS: "1", ...wiring });
    broker = await startInProcessNode(cfg);
    auditDb = new Client({ connectionString: databaseUrlFor("audit", cfg) });
    dlqDb = new Client({ connectionString: databaseUrlFor("dlq", cfg) });
    logsDb = new Client({ connectionString: databaseUrlFor("logs", cfg) });
    await Promise.all([auditDb.connect(), dlqDb.connect(), logsDb.connect()]);
  });

  afterAll(async () => {
    await Promise.all([auditDb?.end(), dlqDb?.end(), logsDb?.end()]);
    await broker?.stop();
    await dropScopeDatabases(scope.prefix);
  });

  it("records an audited call holding a NUL and a lone surrogate, escaped, and the chain verifies", async () => {
    const payload = { "label\u0000": { type: "string", optional: true, default: "Bob\u0000 \ud800 \ue000" } };
    await broker.call("audit.registerSchema", { type: "test.unstorable", version: 1, payload }, asSystem);

    const record = await waitFor(
      async () =>
        (
          await auditDb.query(
            "SELECT change FROM audit_records WHERE name = 'audit.registerSchema' AND entity_id = $1",
            ["test.unstorable"],
          )
        ).rows[0] as { change: { params: { payload: unknown } } } | undefined,
      10_000,
      "the audit record of the call",
    );
    // U+E000 and the code unit's hex digits: U+0000, the lone surrogate and the escape character itself.
    expect(record.change.params.payload).toEqual({
      "label\ue0000000": { type: "string", optional: true, default: "Bob\ue0000000 \ue000d800 \ue000e000" },
    });
    const verdict = await broker.call<ChainVerdict, object>("audit.verify", {}, asSystem);
    expect(verdict).toMatchObject({ valid: true });
    expect(verdict.checked).toBeGreaterThanOrEqual(1);
  });

  it("refuses a NUL bound to a text column with a 422 before anything is written", async () => {
    const call = broker.call(
      "audit.registerSchema",
      { type: "test.nulDescription", version: 1, payload: { id: { type: "uuid" } }, description: "Bob\u0000" },
      asSystem,
    );
    await expect(call).rejects.toMatchObject({
      code: 422,
      type: "VALIDATION_ERROR",
      data: [expect.objectContaining({ type: "unstorableText" })],
    });
    const { rows } = await auditDb.query(
      "SELECT count(*)::int AS n FROM event_schemas WHERE type = 'test.nulDescription'",
    );
    expect(rows[0].n).toBe(0);

    // Through a Sequelize model too (products): refused, nothing created, nothing recorded.
    const product = { sku: "NUL-1", name: "Bob\u0000", price: { amount: 100, currency: "EUR" } };
    await expect(broker.call("products.create", product, asSystem)).rejects.toMatchObject({
      code: 422,
      data: [expect.objectContaining({ type: "unstorableText" })],
    });
    await expect(broker.call("products.list", { search: "NUL-1" }, asSystem)).resolves.toMatchObject({ total: 0 });
    const records = await auditDb.query("SELECT count(*)::int AS n FROM audit_records WHERE name = 'products.create'");
    expect(records.rows[0].n).toBe(0);
  });

  it("stores a dead letter holding a NUL, and keeps one it cannot read as raw text, never dead-lettering its own", async () => {
    const holdingNul = deadLetterEnvelope(
      {
        channel: "user.updated",
        group: "someone",
        messageId: "nul-message",
        message: { displayName: "Bob\u0000" },
        replayable: true,
        attempts: 1,
        error: { name: "Error", message: "bad \u0000 value", code: 500, type: "UNKNOWN_ERROR", data: null },
      },
      { source: "test", correlationId: "nul-correlation", causationId: null },
    );
    await broker.sendToChannel(holdingNul.type, holdingNul);
    const stored = await waitFor(
      async () =>
        (await dlqDb.query("SELECT message, error FROM dead_letters WHERE message_id = 'nul-message'")).rows[0] as
          { message: unknown; error: { message: string } } | undefined,
      10_000,
      "the dead letter holding a NUL",
    );
    expect(stored.message).toEqual({ displayName: "Bob\ue0000000" });
    expect(stored.error.message).toBe("bad \ue0000000 value");

    // Not a dead letter the catalogue accepts: the dlq gives up on it, and keeps it itself.
    const unreadable = createEnvelope("message.deadLettered", { note: "not a dead letter \u0000" } as never, {
      source: "test",
      correlationId: "unreadable",
    });
    await broker.sendToChannel(unreadable.type, unreadable);
    const kept = await waitFor(
      async () =>
        (await dlqDb.query("SELECT * FROM dead_letters WHERE message_id = $1", [unreadable.id])).rows[0] as
          { channel: string; consumer_group: string; replayable: boolean; message: { text: string } } | undefined,
      10_000,
      "the kept dead letter",
    );
    expect(kept).toMatchObject({ channel: "message.deadLettered", consumer_group: "dlq", replayable: false });
    expect(
      JSON.parse(
        kept.message.text.replace(/\ue000([0-9a-f]{4})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
      ),
    ).toEqual(unreadable);

    // Given time to loop, nothing more arrives: two entries, each stored once.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const { rows } = await dlqDb.query("SELECT count(*)::int AS n FROM dead_letters");
    expect(rows[0].n).toBe(2);
  });

  it("stores a log batch holding a NUL, and raises its error record through the outbox", async () => {
    const record = {
      time: new Date().toISOString(),
      level: "error",
      nodeId: "n\u0000",
      module: "probe",
      requestId: "nul-log",
      message: "failed on Bob\u0000",
      fields: { "key\u0000": "value\ud800" },
    };
    const batch = createEnvelope(
      "log.batch",
      { nodeId: "n\u0000", records: [record], dropped: 0 },
      {
        source: "test",
        correlationId: "nul-log",
      },
    );
    await broker.sendToChannel(batch.type, batch);
    const stored = await waitFor(
      async () =>
        (await logsDb.query("SELECT node_id, message, fields FROM log_records WHERE request_id = 'nul-log'"))
          .rows[0] as { node_id: string; message: string; fields: unknown } | undefined,
      10_000,
      "the log record",
    );
    expect(stored).toEqual({
      node_id: "n\ue0000000",
      message: "failed on Bob\ue0000000",
      fields: { "key\ue0000000": "value\ue000d800" },
    });
    const { rows } = await logsDb.query("SELECT envelope FROM outbox WHERE channel = 'log.error'");
    expect(rows.map((row) => row.envelope.payload.record.message)).toContain("failed on Bob\ue0000000");
  });

  it("stores the spans of a batch when one of them cannot be stored, and drops only that one", async () => {
    const span = (id: string, extra: Partial<ExportedSpan> = {}): ExportedSpan => ({
      id,
      traceID: "unstorable-trace",
      name: `span ${id}`,
      startTime: Date.now(),
      duration: 1,
      tags: { nodeID: "n1" },
      ...extra,
    });
    broker.emit("$tracing.spans", [
      span("good-1"),
      span("holds-nul", { name: "a\u0000b", tags: { params: { displayName: "Bob\u0000" } } }),
      span("bad-time", { startTime: Number.NaN }),
      span("good-2"),
    ]);
    const ids = await waitFor(
      async () => {
        const { rows } = await logsDb.query("SELECT span_id, name FROM spans WHERE trace_id = 'unstorable-trace'");
        return rows.length >= 3 ? rows : undefined;
      },
      10_000,
      "the batch's storable spans",
    );
    expect(ids.map((row) => row.span_id).sort()).toEqual(["good-1", "good-2", "holds-nul"]);
    expect(ids.find((row) => row.span_id === "holds-nul")?.name).toBe("a\ue0000000b");
  });
});
