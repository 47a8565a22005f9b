/**
 * audit (Service 3, DB 3): the append-only, tamper-evident audit trail. Its parts, each in its own mixin:
 *
 * - mixins/audit-consumers.mixin.ts: the audit group's consumers, which append every `audit.recorded` (from
 *   middlewares/audit.middleware.ts) and every domain event as a record chained to the one before it by SHA-256
 *   (lib/audit.ts), and keep domain events in the event store;
 * - mixins/audit-event-store.mixin.ts: the event store, in order globally (position) and per stream (the entity);
 * - mixins/audit-schemas.mixin.ts: the schema registry, every event type's payload schemas by version, append-only;
 * - mixins/audit-verify.mixin.ts: `GET /api/audit/verify`, which re-walks the chain and names the first broken link,
 *   and the signed checkpoint of the chain's head in a JetStream key-value bucket.
 *
 * Here: the records themselves (the list and one record), and the start, which sets the anchor key and registers the
 * platform's own catalogue of event schemas.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { AuditPage, AuditRecord } from "../contracts/audit";
import { toRecord, type AuditRow } from "../lib/audit-rows";
import { escapeLike, selectPage } from "../lib/database";
import { NotFoundError } from "../lib/errors";
import { pageParams } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { developmentSecret } from "../lib/secrets";
import auditMigrations from "../migrations/audit";
import { auditConsumersMixin } from "../mixins/audit-consumers.mixin";
import { auditEventStoreMixin } from "../mixins/audit-event-store.mixin";
import { auditSchemasMixin, type AuditSchemaMethods } from "../mixins/audit-schemas.mixin";
import { auditVerifyMixin, type AuditState } from "../mixins/audit-verify.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";

const MAX_PAGE_SIZE = 100;

const listParams = paramsSchema({
  actorId: { type: "string", max: 200, optional: true },
  entityType: { type: "string", max: 100, optional: true },
  entityId: { type: "string", max: 200, optional: true },
  name: { type: "string", max: 200, optional: true },
  namePrefix: { type: "string", min: 1, max: 200, optional: true },
  excludeName: { type: "string", max: 200, optional: true },
  requestId: { type: "string", max: 200, optional: true },
  from: { type: "date", convert: true, optional: true },
  to: { type: "date", convert: true, optional: true },
  ...pageParams(MAX_PAGE_SIZE, 20),
  $$strict: true,
});
const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });

type AuditThis = Service<DbSettings> & DbServiceThis & DbMethods & AuditSchemaMethods & AuditState;

const AuditService: ServiceSchema<DbSettings, DbMethods & AuditSchemaMethods, DbServiceThis & AuditState> = {
  name: "audit",
  // The mixins' actions are declared before the service's own: their static `GET` routes come before `GET /:id`.
  mixins: [
    dbMixin({
      service: "audit",
      migrations: auditMigrations,
      // The trail and the event store: the role the service writes with can only add to them.
      appendOnly: ["audit_records", "events", "missing_records"],
    }),
    auditConsumersMixin(),
    auditVerifyMixin(),
    auditSchemasMixin(),
    auditEventStoreMixin(),
  ],

  /** Sets the anchor key before the consumers subscribe, then registers the platform's own catalogue. */
  async started(this: AuditThis) {
    this.headSeq = 0;
    const cfg = this.settings.config;
    if (cfg.audit.anchorKey) {
      this.anchorKey = cfg.audit.anchorKey;
    } else {
      const key = await developmentSecret(cfg.dataDir, "audit-anchor-key");
      if (key.generated) this.logger.warn("AUDIT_ANCHOR_KEY is not set: generated one for development");
      this.anchorKey = key.value;
    }
    await this.registerCatalogue();
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
      params: listParams,
      async handler(this: AuditThis, ctx: Context<ParamsOf<typeof listParams>>): Promise<AuditPage> {
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
    /**
     * One audit record by its id, with its place in the chain (`seq`, `hash`, `prevHash`): the console's page per
     * record. Declared after the other `GET /…` routes, which `/:id` would otherwise take. `audit:read`.
     */
    get: {
      rest: "GET /:id",
      permissions: ["audit:read"],
      params: idParams,
      async handler(this: AuditThis, ctx: Context<ParamsOf<typeof idParams>>): Promise<AuditRecord> {
        const [row] = await this.rows<AuditRow>("SELECT * FROM audit_records WHERE id = $1", [ctx.params.id]);
        if (!row) throw new NotFoundError("Audit record", ctx.params.id);
        return toRecord(row);
      },
    },
  },
};

export default AuditService;
