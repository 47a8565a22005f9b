/**
 * The audit trail against whoever can write its database: the owner rewriting the chain consistently (every hash
 * recomputed) or removing its newest records is named by verify, because the records' anchors need a key the database
 * never sees. And no record leaves the trail unnoticed: one the audit group gives up on is reported missing until it
 * is there, and a call whose change is too large for a message is still recorded.
 */
import type { ServiceBroker } from "moleculer";
import { connect } from "nats";
import { Client } from "pg";
import { chainHash, checkpointBucket, type Checkpoint } from "../../lib/audit";
import type { AuditContent, ChainVerdict } from "../../contracts/audit";
import { databaseUrlFor } from "../../lib/database";
import { createEnvelope } from "../../lib/events";
import { SYSTEM_CALLER } from "../../lib/permissions";
import { dropScopeDatabases, isolation, testConfig, testNatsUrl, waitFor } from "../../support/nodes";
import { startInProcessNode } from "../support/nodes";
import { contentOf, type AuditRow } from "../../lib/audit-rows";

const scope = isolation();
let broker: ServiceBroker;
let owner: Client;
const asSystem = { meta: { caller: SYSTEM_CALLER } };
const verify = () => broker.call<ChainVerdict, object>("audit.verify", {}, asSystem);

const recordCount = async () => (await owner.query("SELECT count(*)::int AS n FROM audit_records")).rows[0].n as number;

/** An `audit.recorded` message as the audit middleware publishes it. */
function actionRecord(id: string, name: string, change: unknown) {
  const payload: AuditContent = {
    id,
    kind: "action",
    name,
    actor: { type: "system", id: null },
    entity: { type: "test", id },
    requestId: null,
    nodeId: "test",
    occurredAt: new Date().toISOString(),
    change,
  };
  return createEnvelope("audit.recorded", payload, { source: "test", correlationId: id });
}

beforeAll(async () => {
  const cfg = testConfig(scope, {
    SERVICES: "audit",
    DELIVERY_MAX_ATTEMPTS: "1",
  });
  broker = await startInProcessNode(cfg);
  // The database owner: the role that may switch the trail's guard off.
  owner = new Client({ connectionString: databaseUrlFor("audit", cfg) });
  await owner.connect();
  for (const id of ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]) {
    const record = actionRecord(id, "test.seeded", { n: id });
    await broker.sendToChannel(record.type, record);
  }
  await waitFor(async () => ((await recordCount()) >= 2 ? true : undefined), 10_000, "the seeded records");
});

afterAll(async () => {
  await owner?.end();
  await broker?.stop();
  await dropScopeDatabases(scope.prefix);
});

it("reports a record the audit group gave up on as missing, until it is recorded", async () => {
  const id = "00000000-0000-4000-8000-0000000000aa";
  // Not a record the catalogue accepts (no such kind): dead-lettered at once.
  const refused = actionRecord(id, "test.refused", {});
  (refused.payload as { kind: string }).kind = "bogus";
  await broker.sendToChannel(refused.type, refused);
  const verdict = await waitFor(
    async () => {
      const found = await verify();
      return found.valid ? undefined : found;
    },
    10_000,
    "verify to miss the record",
  );
  expect(verdict).toMatchObject({ valid: false, brokenAt: { seq: null, id, reason: "record missing" } });

  // Replayed, fixed: the record is there and the trail whole again.
  const fixed = actionRecord(id, "test.refused", {});
  await broker.sendToChannel(fixed.type, fixed);
  await waitFor(async () => ((await verify()).valid ? true : undefined), 10_000, "verify to find the record");
});

it("records a call whose change is too large for a message by its size and digest", async () => {
  const description = "x".repeat(300_000);
  await broker.call(
    "audit.registerSchema",
    { type: "test.large", version: 1, payload: { note: { type: "string", optional: true, default: description } } },
    asSystem,
  );
  const { change } = await waitFor(
    async () =>
      (await owner.query("SELECT change FROM audit_records WHERE entity_id = 'test.large'")).rows[0] as
        { change: { omitted: string; bytes: number; sha256: string } } | undefined,
    10_000,
    "the record of the large call",
  );
  expect(change).toEqual({
    omitted: "too large",
    bytes: expect.any(Number),
    sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
  });
  expect(change.bytes).toBeGreaterThan(300_000);
  expect(await verify()).toMatchObject({ valid: true });
});

it("names the newest records removed by the owner", async () => {
  const { rows } = await owner.query<AuditRow>("SELECT * FROM audit_records ORDER BY seq DESC LIMIT 1");
  const newest = rows[0];
  await owner.query("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update");
  await owner.query("DELETE FROM audit_records WHERE seq = $1", [newest.seq]);
  await owner.query("ALTER TABLE audit_records ENABLE TRIGGER audit_records_no_update");
  expect(await verify()).toMatchObject({
    valid: false,
    brokenAt: { seq: Number(newest.seq), reason: "records removed" },
  });

  // Put back as it was, the trail is whole again.
  const columns = Object.keys(newest);
  await owner.query(
    `INSERT INTO audit_records (${columns.join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
    columns.map((column) => {
      const value = newest[column as keyof AuditRow];
      return column === "change" ? JSON.stringify(value) : value;
    }),
  );
  expect(await verify()).toMatchObject({ valid: true });
});

it("names the first record of a chain the owner rewrote consistently, every hash recomputed", async () => {
  expect(await verify()).toMatchObject({ valid: true });
  const { rows } = await owner.query<AuditRow>("SELECT * FROM audit_records ORDER BY seq");
  const target = rows[1];

  await owner.query("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update");
  let prevHash = rows[0].hash;
  for (const row of rows.slice(1)) {
    const change = row.seq === target.seq ? { n: "forged" } : row.change;
    const hash = chainHash(prevHash, contentOf({ ...row, change }));
    await owner.query("UPDATE audit_records SET change = $2, prev_hash = $3, hash = $4 WHERE seq = $1", [
      row.seq,
      JSON.stringify(change),
      prevHash,
      hash,
    ]);
    prevHash = hash;
  }
  await owner.query("ALTER TABLE audit_records ENABLE TRIGGER audit_records_no_update");

  // The chain alone holds together: only the anchors tell.
  expect(await verify()).toMatchObject({
    valid: false,
    checked: 1,
    brokenAt: { seq: Number(target.seq), id: target.id, reason: "not anchored" },
  });
});

describe("with the channels on NATS JetStream", () => {
  const natsScope = isolation();
  const bucket = checkpointBucket(natsScope.namespace);
  const nodeConfig = () => testConfig(natsScope, { SERVICES: "audit", TRANSPORTER: testNatsUrl() });

  afterAll(async () => {
    const nc = await connect({ servers: testNatsUrl() });
    await (await nc.jetstreamManager()).streams.delete(`KV_${bucket}`).catch(() => undefined);
    await nc.close();
    await dropScopeDatabases(natsScope.prefix);
  });

  it("names the newest records removed while every audit node was down, from the checkpoint kept in JetStream", async () => {
    let node = await startInProcessNode(nodeConfig());
    const db = new Client({ connectionString: databaseUrlFor("audit", nodeConfig()) });
    await db.connect();
    const nc = await connect({ servers: testNatsUrl() });
    try {
      for (const id of ["00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2"]) {
        const record = actionRecord(id, "test.checkpointed", { n: id });
        await node.sendToChannel(record.type, record);
      }
      const newest = await waitFor(
        async () => {
          const { rows } = await db.query("SELECT max(seq)::int AS seq, count(*)::int AS n FROM audit_records");
          return rows[0].n >= 2 ? (rows[0].seq as number) : undefined;
        },
        10_000,
        "the records",
      );
      const kv = await nc.jetstream().views.kv(bucket);
      await waitFor(
        async () => ((await kv.get("head"))?.json<Checkpoint>().seq === newest ? true : undefined),
        10_000,
        "the checkpoint of the newest record",
      );
      await node.stop();

      await db.query("ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update");
      await db.query("DELETE FROM audit_records WHERE seq = $1", [newest]);
      await db.query("ALTER TABLE audit_records ENABLE TRIGGER audit_records_no_update");

      // A node that never saw the removed record: only the checkpoint knows.
      node = await startInProcessNode(nodeConfig());
      expect(await node.call("audit.verify", {}, asSystem)).toMatchObject({
        valid: false,
        checked: 1,
        brokenAt: { seq: newest, reason: "records removed" },
      });
    } finally {
      await node.stop();
      await db.end();
      await nc.close();
    }
  });
});
