/**
 * audit (Service 3, DB 3): the append-only, tamper-evident audit trail. It consumes `audit.recorded` (every successful
 * call of an action that declares `audit`, from middlewares/audit.middleware.ts) and every domain event, and appends
 * each as a record chained to the one before it by SHA-256 (lib/audit.ts). Appends take a transaction-scoped advisory
 * lock of the audit database only, so they queue behind each other, never behind anything else in the system.
 * Domain events are also kept as the event store: in order globally (position) and per stream (the entity).
 * `GET /api/audit/verify` re-walks the chain and names the first broken link: a record changed, a link broken, a record
 * whose anchor (its hash signed with `AUDIT_ANCHOR_KEY`, which the database never sees) is wrong, so someone without
 * the key wrote or rewrote it, newer records removed, or a record the audit group gave up on and dead-lettered.
 *
 * The schema registry lives here too: every event type's payload schemas by version, append-only. A new version must
 * follow the latest one and be compatible with it (lib/schema-compat.ts); the platform's own catalogue
 * (lib/event-types.ts) is registered when the service starts, so a deploy that changed a registered version in place or
 * broke compatibility is refused and logged.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { KV, KvEntry } from "nats";
import { escapeLike, selectPage } from "../lib/database";
import {
  CURSOR_PARAM,
  cursorPage,
  pageOf,
  pageParams,
  type CursorPage,
  type Page,
  type PageQuery,
} from "../lib/paging";
import type { Transaction } from "sequelize";
import {
  GENESIS_HASH,
  anchorOf,
  canonicalJson,
  chainHash,
  checkpointBucket,
  isSignedCheckpoint,
  signCheckpoint,
  type Checkpoint,
  redact,
  verifyLinks,
} from "../lib/audit";
import type {
  AuditContent,
  AuditPage,
  AuditRecord,
  ChainVerdict,
  RegisteredSchema,
  StoredEvent,
} from "../contracts/audit";
import { ConflictError, DependencyUnavailableError, NotFoundError, invalidFields } from "../lib/errors";
import { DOMAIN_EVENT_TYPES, EVENT_SCHEMAS } from "../lib/event-types";
import type { CallerMeta } from "../contracts/caller";
import type { GatewayMeta } from "../lib/gateway-meta";
import { compatibilityProblems, schemaDefinitionProblems } from "../lib/schema-compat";
import type { ErrorRecord } from "../contracts/dead-letters";
import type { EventEnvelope } from "../lib/events";
import auditMigrations from "../migrations/audit";
import { config } from "../lib/config";
import { developmentSecret } from "../lib/secrets";
import { consumerMixin, type ConsumerThis, type EventHandler } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { storable, storableJson, storableText } from "../lib/storable";

interface EventRow {
  position: string;
  stream_type: string;
  stream_id: string;
  stream_version: number;
  stored_at: Date;
  envelope: EventEnvelope;
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    position: Number(row.position),
    streamType: row.stream_type,
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    storedAt: row.stored_at.toISOString(),
    envelope: row.envelope,
  };
}

interface SchemaRow {
  type: string;
  version: number;
  payload: Record<string, unknown>;
  description: string | null;
  registered_by: string;
  registered_at: Date;
}

interface SchemaRegistration {
  type: string;
  version: number;
  payload: Record<string, unknown>;
  description?: string;
}

function toSchema(row: SchemaRow): RegisteredSchema {
  return {
    type: row.type,
    version: row.version,
    payload: row.payload,
    description: row.description,
    registeredBy: row.registered_by,
    registeredAt: row.registered_at.toISOString(),
  };
}

interface AuditRow {
  seq: string;
  id: string;
  kind: "action" | "event";
  name: string;
  actor_type: string;
  actor_id: string | null;
  entity_type: string | null;
  entity_id: string | null;
  request_id: string | null;
  node_id: string | null;
  occurred_at: Date;
  recorded_at: Date;
  change: unknown;
  prev_hash: string;
  hash: string;
  anchor: string | null;
}

/** An arbitrary constant; advisory locks are scoped to the audit database. */
const CHAIN_LOCK = 7_426_101;
const MAX_PAGE_SIZE = 100;
/** Event store pages: a replaying reader takes many events per request. */
const DEFAULT_EVENTS_PAGE = 100;
const MAX_EVENTS_PAGE = 1000;
const VERIFY_BATCH = 1000;

function contentOf(row: AuditRow): AuditContent {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    actor: { type: row.actor_type, id: row.actor_id },
    entity: { type: row.entity_type, id: row.entity_id },
    requestId: row.request_id,
    nodeId: row.node_id,
    occurredAt: row.occurred_at.toISOString(),
    change: row.change,
  };
}

function toRecord(row: AuditRow): AuditRecord {
  return {
    seq: Number(row.seq),
    ...contentOf(row),
    recordedAt: row.recorded_at.toISOString(),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** What the chain's writer and verifier keep on the service. */
interface AuditState {
  /** AUDIT_ANCHOR_KEY, or the generated development key; set before the consumers subscribe. */
  anchorKey: string;
  /**
   * The newest seq this node has appended or verified. The anchors cannot show the newest records removed (what is
   * left is still signed), so verify compares the head with what this node has seen and with the checkpoint.
   */
  headSeq: number;
  /** Where the signed checkpoint is kept, when the channels run on NATS: a JetStream key-value bucket. */
  checkpoints?: Promise<KV>;
  checkpointTimer?: NodeJS.Timeout;
}

/** How long after an append the checkpoint follows: appends in between share one update. */
const CHECKPOINT_DELAY_MS = 500;
const CHECKPOINT_KEY = "head";

/** What a key-value entry holds, as JSON; null when deleted, missing or not JSON. */
function storedValue(entry: KvEntry | null | undefined): unknown {
  if (entry?.operation !== "PUT") return null;
  try {
    return entry.json<unknown>();
  } catch {
    return null;
  }
}

type AuditConsumer = ConsumerThis & Pick<DbMethods, "rows"> & AuditState & Pick<AuditMethods, "scheduleCheckpoint">;

/** Appends one record to the chain, in the consumer's transaction. */
async function append(svc: AuditConsumer, content: AuditContent, transaction: Transaction): Promise<void> {
  await svc.rows("SELECT pg_advisory_xact_lock($1)", [CHAIN_LOCK], { transaction });
  const [last] = await svc.rows<{ hash: string }>("SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1", [], {
    transaction,
  });
  const prevHash = last?.hash ?? GENESIS_HASH;
  // What is stored must be what was hashed: normalised as jsonb keeps it (no undefined, no Dates) and with the text
  // PostgreSQL cannot store escaped (lib/storable.ts), so a record holding a NUL is chained and verifiable like any.
  const stored = storable(content);
  const hash = chainHash(prevHash, stored);
  const inserted = await svc.rows<{ seq: string }>(
    `INSERT INTO audit_records (id, kind, name, actor_type, actor_id, entity_type, entity_id, request_id, node_id,
       occurred_at, change, prev_hash, hash, anchor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING RETURNING seq`,
    [
      stored.id,
      stored.kind,
      stored.name,
      stored.actor.type,
      stored.actor.id,
      stored.entity.type,
      stored.entity.id,
      stored.requestId,
      stored.nodeId,
      stored.occurredAt,
      storableJson(content.change),
      prevHash,
      hash,
      anchorOf(svc.anchorKey, hash),
    ],
    { transaction },
  );
  if (inserted[0]) {
    const seq = Number(inserted[0].seq);
    transaction.afterCommit(() => {
      svc.headSeq = Math.max(svc.headSeq, seq);
      svc.scheduleCheckpoint();
    });
  }
}

const recordAction: EventHandler<AuditConsumer> = async function (envelope, transaction) {
  await append(this, envelope.payload as AuditContent, transaction);
};

/**
 * Before the audit group dead-letters a message, notes the record it would have been, in the audit database: verify
 * reports the trail incomplete until the record is there (replayed from the dead-letter queue). A failure here leaves
 * the message to be delivered again, so no record leaves the trail without a trace.
 */
async function noteMissing(
  this: AuditConsumer,
  { deadLetterId, envelope, error }: { deadLetterId: string; envelope: EventEnvelope | undefined; error: ErrorRecord },
): Promise<void> {
  const action = envelope?.type === "audit.recorded" ? (envelope.payload as Partial<AuditContent> | null) : null;
  const recordId = action ? String(action.id) : (envelope?.id ?? deadLetterId);
  const name = action ? String(action.name) : (envelope?.type ?? null);
  await this.rows(
    `INSERT INTO missing_records (record_id, name, dead_letter_id, error) VALUES ($1, $2, $3, $4)
     ON CONFLICT (record_id) DO NOTHING`,
    [storableText(recordId), name === null ? null : storableText(name), deadLetterId, storableJson(error)],
  );
}

/**
 * A domain event: stored in the event store (its stream is the entity it is about, the payload's first key) and
 * recorded in the audit trail as its producer's doing, in one transaction.
 */
const recordEvent: EventHandler<AuditConsumer> = async function (envelope: EventEnvelope, transaction) {
  const [streamType, subject] = Object.entries(envelope.payload as Record<string, { id?: unknown }>)[0] ?? [];
  const streamId = typeof subject?.id === "string" ? subject.id : null;
  await append(
    this,
    {
      id: envelope.id,
      kind: "event",
      name: envelope.type,
      actor: { type: "service", id: envelope.source },
      entity: { type: streamType ?? null, id: streamId },
      requestId: envelope.correlationId,
      nodeId: null,
      occurredAt: envelope.occurredAt,
      change: redact(envelope.payload),
    },
    transaction,
  );
  // Under the chain's lock (taken by append), so stream versions are handed out one at a time.
  await this.rows(
    `INSERT INTO events (id, stream_type, stream_id, stream_version, type, version, occurred_at, envelope)
     SELECT $1::uuid, $2::text, $3::text, coalesce(max(stream_version), 0) + 1, $4::text, $5::int, $6::timestamptz, $7::jsonb
     FROM events WHERE stream_type = $2::text AND stream_id = $3::text
     ON CONFLICT (id) DO NOTHING`,
    [
      envelope.id,
      storableText(streamType ?? envelope.type),
      storableText(streamId ?? envelope.id),
      envelope.type,
      envelope.version,
      envelope.occurredAt,
      storableJson(envelope),
    ],
    { transaction },
  );
};

interface AuditMethods {
  verifyChain(): Promise<ChainVerdict>;
  /** Writes the signed checkpoint soon (NATS only); appends meanwhile share it. */
  scheduleCheckpoint(): void;
  /** Moves the checkpoint forward to the chain's head; never back, whichever replica writes. */
  writeCheckpoint(): Promise<void>;
  /** The checkpoint, when there is one signed with our key. */
  readCheckpoint(): Promise<Checkpoint | null>;
  /**
   * The checkpoint's bucket, opened (created when missing) on first use; null without JetStream (the in-memory
   * channels, or NATS not connected yet: the channels connect after the services have started).
   */
  checkpointStore(): Promise<KV> | null;
  registerSchemaVersion(
    entry: SchemaRegistration,
    registeredBy: string,
  ): Promise<{ schema: RegisteredSchema; created: boolean }>;
}

type AuditThis = Service<DbSettings> & DbServiceThis & DbMethods & AuditMethods & AuditState;

const AuditService: ServiceSchema<DbSettings, DbMethods & AuditMethods, DbServiceThis & AuditState> = {
  name: "audit",
  mixins: [
    dbMixin({
      service: "audit",
      migrations: auditMigrations,
      // The trail and the event store: the role the service writes with can only add to them.
      appendOnly: ["audit_records", "events", "missing_records"],
    }),
    consumerMixin<AuditConsumer>({
      group: "audit",
      onDeadLetter: noteMissing,
      handlers: {
        "audit.recorded": recordAction,
        ...Object.fromEntries(DOMAIN_EVENT_TYPES.map((type) => [type, recordEvent])),
      },
    }),
  ],

  /** Registers the platform's own catalogue; a version the registry refuses is logged, and the rest still register. */
  async started(this: AuditThis) {
    this.headSeq = 0;
    const cfg = config();
    if (cfg.audit.anchorKey) {
      this.anchorKey = cfg.audit.anchorKey;
    } else {
      const key = await developmentSecret(cfg.dataDir, "audit-anchor-key");
      if (key.generated) this.logger.warn("AUDIT_ANCHOR_KEY is not set: generated one for development");
      this.anchorKey = key.value;
    }
    for (const schema of EVENT_SCHEMAS) {
      const payload = schema.payload as Record<string, unknown>;
      try {
        const { created } = await this.registerSchemaVersion({ ...schema, payload }, "system:catalogue");
        if (created) this.logger.info(`Registered event schema ${schema.type} v${schema.version}`);
      } catch (err) {
        this.logger.error(
          `The schema registry refused the built-in ${schema.type} v${schema.version}: ${(err as Error).message}`,
          (err as ConflictError).data,
        );
      }
    }
  },

  actions: {
    /**
     * Audit records, newest first, by actor, entity, action or event name (exact, or `namePrefix`: `orders.` for every
     * orders action), request and time; `excludeName` leaves one name out (the console hides `auth.refresh`, written
     * by every reload). `audit:read`.
     */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["audit:read"],
      params: {
        actorId: { type: "string", max: 200, optional: true },
        entityType: { type: "string", max: 100, optional: true },
        entityId: { type: "string", max: 200, optional: true },
        name: { type: "string", max: 200, optional: true },
        namePrefix: { type: "string", min: 1, max: 200, optional: true },
        excludeName: { type: "string", max: 200, optional: true },
        requestId: { type: "string", max: 200, optional: true },
        from: { type: "date", convert: true, optional: true },
        to: { type: "date", convert: true, optional: true },
        page: { type: "number", integer: true, positive: true, convert: true, default: 1 },
        pageSize: { type: "number", integer: true, positive: true, max: MAX_PAGE_SIZE, convert: true, default: 20 },
        $$strict: true,
      },
      async handler(
        this: AuditThis,
        ctx: Context<{
          actorId?: string;
          entityType?: string;
          entityId?: string;
          name?: string;
          namePrefix?: string;
          excludeName?: string;
          requestId?: string;
          from?: Date;
          to?: Date;
          page: number;
          pageSize: number;
        }>,
      ): Promise<AuditPage> {
        const { page, pageSize } = ctx.params;
        const p = ctx.params;
        const prefix = p.namePrefix === undefined ? undefined : `${escapeLike(p.namePrefix)}%`;
        const bind = [
          p.actorId,
          p.entityType,
          p.entityId,
          p.name,
          p.requestId,
          p.from,
          p.to,
          prefix,
          p.excludeName,
        ].map((v) => v ?? null);
        const where = `($1::text IS NULL OR actor_id = $1) AND ($2::text IS NULL OR entity_type = $2)
          AND ($3::text IS NULL OR entity_id = $3) AND ($4::text IS NULL OR name = $4)
          AND ($5::text IS NULL OR request_id = $5) AND ($6::timestamptz IS NULL OR occurred_at >= $6)
          AND ($7::timestamptz IS NULL OR occurred_at <= $7) AND ($8::text IS NULL OR name LIKE $8)
          AND ($9::text IS NULL OR name <> $9)`;
        return selectPage(
          this.rows,
          { table: "audit_records", where, order: "seq DESC", bind },
          page,
          pageSize,
          toRecord,
        );
      },
    },

    /**
     * The event store, globally, in order: a cursor page of the events stored after `after` (a cursor: the position
     * of the last event read). `limit` is the deprecated name of `pageSize`, documented before lists had one
     * vocabulary; `pageSize` wins when both are given. `audit:read`.
     */
    events: {
      rest: "GET /events",
      list: "cursor",
      permissions: ["audit:read"],
      params: {
        after: CURSOR_PARAM,
        pageSize: {
          type: "number",
          integer: true,
          positive: true,
          max: MAX_EVENTS_PAGE,
          convert: true,
          optional: true,
        },
        limit: { type: "number", integer: true, positive: true, max: MAX_EVENTS_PAGE, convert: true, optional: true },
        $$strict: true,
      },
      async handler(
        this: AuditThis,
        ctx: Context<{ after: string; pageSize?: number; limit?: number }>,
      ): Promise<CursorPage<StoredEvent>> {
        const { after } = ctx.params;
        const pageSize = ctx.params.pageSize ?? ctx.params.limit ?? DEFAULT_EVENTS_PAGE;
        const rows = await this.rows<EventRow>("SELECT * FROM events WHERE position > $1 ORDER BY position LIMIT $2", [
          after,
          pageSize + 1,
        ]);
        return cursorPage(rows.map(toStoredEvent), pageSize, after, (event) => event.position);
      },
    },

    /**
     * One stream of the event store (an entity's events), in order: a cursor page of the events after `after` (a
     * cursor: the stream version of the last event read). `audit:read`.
     */
    stream: {
      rest: "GET /streams/:streamType/:streamId",
      list: "cursor",
      permissions: ["audit:read"],
      params: {
        streamType: { type: "string", min: 1, max: 100 },
        streamId: { type: "string", min: 1, max: 200 },
        after: CURSOR_PARAM,
        pageSize: {
          type: "number",
          integer: true,
          positive: true,
          max: MAX_EVENTS_PAGE,
          convert: true,
          default: DEFAULT_EVENTS_PAGE,
        },
        $$strict: true,
      },
      async handler(
        this: AuditThis,
        ctx: Context<{ streamType: string; streamId: string; after: string; pageSize: number }>,
      ): Promise<CursorPage<StoredEvent>> {
        const { streamType, streamId, after, pageSize } = ctx.params;
        const rows = await this.rows<EventRow>(
          `SELECT * FROM events WHERE stream_type = $1 AND stream_id = $2 AND stream_version > $3
           ORDER BY stream_version LIMIT $4`,
          [streamType, streamId, after, pageSize + 1],
        );
        return cursorPage(rows.map(toStoredEvent), pageSize, after, (event) => event.streamVersion);
      },
    },

    /** The schema registry: every event type's versions (or one type's), in order (all of them unless paged). `audit:read`. */
    schemas: {
      rest: "GET /schemas",
      list: "page",
      permissions: ["audit:read"],
      params: {
        type: { type: "string", min: 1, max: 200, optional: true },
        ...pageParams(MAX_EVENTS_PAGE),
        $$strict: true,
      },
      async handler(this: AuditThis, ctx: Context<{ type?: string } & PageQuery>): Promise<Page<RegisteredSchema>> {
        const rows = await this.rows<SchemaRow>(
          "SELECT * FROM event_schemas WHERE ($1::text IS NULL OR type = $1) ORDER BY type, version",
          [ctx.params.type ?? null],
        );
        return pageOf(rows.map(toSchema), ctx.params);
      },
    },

    /**
     * Registers the next version of an event type (version 1 for a new type). 201 when registered; 200 when that
     * exact version is already there (a retry); 409 `SCHEMA_VERSION_CONFLICT` for a version that is not the next one
     * or that exists with another schema; 409 `INCOMPATIBLE_SCHEMA` with the offending fields; 422 for a schema that
     * does not compile. `schemas:write`.
     */
    registerSchema: {
      rest: "POST /schemas",
      status: 201,
      permissions: ["schemas:write"],
      audit: { entity: "eventSchema", idParam: "type" },
      params: {
        type: { type: "string", pattern: /^[a-z][a-z0-9]*(\.[a-z][a-zA-Z0-9]*)+$/, max: 200 },
        version: { type: "number", integer: true, positive: true, max: 10_000 },
        payload: { type: "object" },
        description: { type: "string", max: 1000, optional: true },
        $$strict: true,
      },
      async handler(
        this: AuditThis,
        ctx: Context<SchemaRegistration, CallerMeta & GatewayMeta>,
      ): Promise<RegisteredSchema> {
        const problems = schemaDefinitionProblems(ctx.params.payload);
        if (problems.length > 0) throw invalidFields("The payload schema does not compile", problems);
        const caller = ctx.meta.caller;
        const registeredBy = caller && "id" in caller ? `${caller.type}:${caller.id}` : (caller?.type ?? "unknown");
        const { schema, created } = await this.registerSchemaVersion(ctx.params, registeredBy);
        // Already registered identically: a retry, answered 200.
        if (!created) ctx.meta.$statusCode = 200;
        return schema;
      },
    },

    /** Re-walks the whole chain: valid, or the first broken link (its seq and why). `audit:read`. */
    verify: {
      rest: "GET /verify",
      permissions: ["audit:read"],
      params: { $$strict: true },
      async handler(this: AuditThis): Promise<ChainVerdict> {
        return this.verifyChain();
      },
    },

    /**
     * One audit record by its id, with its place in the chain (`seq`, `hash`, `prevHash`): the console's page per
     * record. Declared after the other `GET /…` routes, which `/:id` would otherwise take. `audit:read`.
     */
    get: {
      rest: "GET /:id",
      permissions: ["audit:read"],
      params: { id: { type: "uuid" }, $$strict: true },
      async handler(this: AuditThis, ctx: Context<{ id: string }>): Promise<AuditRecord> {
        const [row] = await this.rows<AuditRow>("SELECT * FROM audit_records WHERE id = $1", [ctx.params.id]);
        if (!row) throw new NotFoundError("Audit record", ctx.params.id);
        return toRecord(row);
      },
    },
  },

  async stopped(this: AuditThis) {
    clearTimeout(this.checkpointTimer);
  },

  methods: {
    checkpointStore(this: AuditThis) {
      const jetstream = this.broker.channelAdapter.client;
      if (!jetstream) return null;
      const { namespace, jetstreamReplicas } = config();
      this.checkpoints ??= jetstream.views
        .kv(checkpointBucket(namespace), { history: 1, replicas: jetstreamReplicas })
        .catch((err: Error) => {
          this.checkpoints = undefined; // opened again next time
          throw err;
        });
      return this.checkpoints;
    },

    scheduleCheckpoint(this: AuditThis) {
      if (this.checkpointTimer || !this.broker.channelAdapter.client) return;
      this.checkpointTimer = setTimeout(() => {
        this.checkpointTimer = undefined;
        this.writeCheckpoint().catch((err: Error) => {
          this.logger.warn(`Audit checkpoint not written (the next append tries again): ${err.message}`);
        });
      }, CHECKPOINT_DELAY_MS);
    },

    async writeCheckpoint(this: AuditThis) {
      const store = await this.checkpointStore();
      if (!store) return;
      const [head] = await this.rows<{ seq: string; hash: string }>(
        "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1",
      );
      if (!head) return;
      const checkpoint = signCheckpoint(this.anchorKey, Number(head.seq), head.hash);
      // Compare and set: a replica that read an older head loses the race and finds the newer checkpoint there.
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const entry = await store.get(CHECKPOINT_KEY);
        const current = storedValue(entry);
        if (isSignedCheckpoint(this.anchorKey, current) && current.seq >= checkpoint.seq) return;
        try {
          const value = JSON.stringify(checkpoint);
          await (entry ? store.update(CHECKPOINT_KEY, value, entry.revision) : store.create(CHECKPOINT_KEY, value));
          return;
        } catch {
          // Another replica wrote meanwhile: read again.
        }
      }
    },

    async readCheckpoint(this: AuditThis) {
      // Without it verify could not tell the newest records removed: unavailable rather than a partial answer.
      const entry = await Promise.resolve(this.checkpointStore())
        .then((store) => store?.get(CHECKPOINT_KEY))
        .catch((err: Error) => {
          throw new DependencyUnavailableError("NATS JetStream (the audit checkpoint)", err.message);
        });
      const value = storedValue(entry);
      if (value === null) return null;
      if (isSignedCheckpoint(this.anchorKey, value)) return value;
      this.logger.warn("The audit checkpoint is not signed with AUDIT_ANCHOR_KEY: ignored");
      return null;
    },

    async registerSchemaVersion(this: AuditThis, entry: SchemaRegistration, registeredBy: string) {
      const { type, version, payload } = entry;
      return this.sequelize.transaction(async (transaction) => {
        // One registration per type at a time, across replicas.
        await this.rows("SELECT pg_advisory_xact_lock(hashtext('event_schemas:' || $1))", [type], { transaction });
        const versions = await this.rows<SchemaRow>(
          "SELECT * FROM event_schemas WHERE type = $1 ORDER BY version",
          [type],
          { transaction },
        );
        const existing = versions.find((row) => row.version === version);
        if (existing) {
          if (canonicalJson(existing.payload) === canonicalJson(payload)) {
            return { schema: toSchema(existing), created: false };
          }
          throw new ConflictError(
            `${type} v${version} is registered with another schema; register it as a new version`,
            "SCHEMA_VERSION_CONFLICT",
            { type, version, expectedVersion: (versions.at(-1)?.version ?? 0) + 1 },
          );
        }
        const latest = versions.at(-1);
        const expectedVersion = (latest?.version ?? 0) + 1;
        if (version !== expectedVersion) {
          throw new ConflictError(`The next version of ${type} is ${expectedVersion}`, "SCHEMA_VERSION_CONFLICT", {
            type,
            version,
            expectedVersion,
          });
        }
        const problems = latest ? compatibilityProblems(latest.payload, payload) : [];
        if (problems.length > 0) {
          throw new ConflictError(
            `${type} v${version} is not compatible with v${latest!.version}`,
            "INCOMPATIBLE_SCHEMA",
            { type, version, problems },
          );
        }
        const [row] = await this.rows<SchemaRow>(
          `INSERT INTO event_schemas (type, version, payload, description, registered_by)
           VALUES ($1, $2, $3, $4, $5) RETURNING *`,
          [type, version, storableJson(payload), entry.description ?? null, registeredBy],
          { transaction },
        );
        return { schema: toSchema(row), created: true };
      });
    },

    async verifyChain(this: AuditThis): Promise<ChainVerdict> {
      // Taken before the walk, so records appended while it runs cannot look like records removed.
      const checkpoint = await this.readCheckpoint();
      const knownHead = Math.max(this.headSeq, checkpoint?.seq ?? 0);
      let previousHash = GENESIS_HASH;
      let afterSeq = 0;
      let checked = 0;
      for (;;) {
        const rows = await this.rows<AuditRow>("SELECT * FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2", [
          afterSeq,
          VERIFY_BATCH,
        ]);
        if (rows.length === 0) break;
        const links = rows.map((row) => ({
          seq: Number(row.seq),
          content: contentOf(row),
          prevHash: row.prev_hash,
          hash: row.hash,
          anchor: row.anchor,
        }));
        const verdict = verifyLinks(previousHash, links, this.anchorKey);
        if ("broken" in verdict) {
          return {
            valid: false,
            checked: checked + links.findIndex((l) => l.seq === verdict.broken.seq),
            brokenAt: verdict.broken,
          };
        }
        previousHash = verdict.lastHash;
        afterSeq = links[links.length - 1].seq;
        checked += links.length;
      }
      if (afterSeq < knownHead) {
        return { valid: false, checked, brokenAt: { seq: afterSeq + 1, id: null, reason: "records removed" } };
      }
      this.headSeq = Math.max(this.headSeq, afterSeq);
      const [missing] = await this.rows<{ record_id: string }>(`SELECT record_id FROM missing_records m
         WHERE NOT EXISTS (SELECT 1 FROM audit_records r WHERE r.id::text = m.record_id) ORDER BY noted_at LIMIT 1`);
      if (missing)
        return { valid: false, checked, brokenAt: { seq: null, id: missing.record_id, reason: "record missing" } };
      return { valid: true, checked };
    },
  },
};

export default AuditService;
