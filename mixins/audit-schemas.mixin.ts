/**
 * The schema registry: every event type's payload schemas by version, append-only. A new version must follow the
 * latest one and be compatible with it (lib/schema-compat.ts); the platform's own catalogue (lib/event-types.ts) is
 * registered when the service starts (`registerCatalogue`), so a deploy that changed a registered version in place or
 * broke compatibility is refused and logged.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { RegisteredSchema } from "../contracts/audit";
import type { CallerMeta } from "../contracts/caller";
import { canonicalJson } from "../lib/audit";
import { toSchema, type SchemaRow } from "../lib/audit-rows";
import { ConflictError, invalidFields } from "../lib/errors";
import { EVENT_SCHEMAS } from "../lib/event-types";
import type { GatewayMeta } from "../lib/gateway-meta";
import { pageOf, pageParams, type Page } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { compatibilityProblems, schemaDefinitionProblems } from "../lib/schema-compat";
import { storableJson } from "../lib/storable";
import { MAX_EVENTS_PAGE } from "./audit-event-store.mixin";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

const schemasParams = paramsSchema({
  type: { type: "string", min: 1, max: 200, optional: true },
  ...pageParams(MAX_EVENTS_PAGE),
  $$strict: true,
});
const registerSchemaParams = paramsSchema({
  type: { type: "string", pattern: /^[a-z][a-z0-9]*(\.[a-z][a-zA-Z0-9]*)+$/, max: 200 },
  version: { type: "number", integer: true, positive: true, max: 10_000 },
  payload: { type: "object" },
  description: { type: "string", max: 1000, optional: true },
  $$strict: true,
});
/** A version of an event type's schema to register: from `registerSchema`, or from the platform's own catalogue. */
type SchemaRegistration = ParamsOf<typeof registerSchemaParams>;

export interface AuditSchemaMethods {
  registerSchemaVersion(
    entry: SchemaRegistration,
    registeredBy: string,
  ): Promise<{ schema: RegisteredSchema; created: boolean }>;
  /** Registers the platform's own catalogue; a version the registry refuses is logged, and the rest still register. */
  registerCatalogue(): Promise<void>;
}

type SchemasThis = Service<DbSettings> & DbServiceThis & DbMethods & AuditSchemaMethods;

export function auditSchemasMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & AuditSchemaMethods, DbServiceThis, SchemasThis>> = {
    actions: {
      /**
       * The schema registry: every event type's versions (or one type's), in order (all of them unless paged).
       * `audit:read`.
       */
      schemas: {
        rest: "GET /schemas",
        list: "page",
        permissions: ["audit:read"],
        params: schemasParams,
        async handler(
          this: SchemasThis,
          ctx: Context<ParamsOf<typeof schemasParams>>,
        ): Promise<Page<RegisteredSchema>> {
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
        params: registerSchemaParams,
        async handler(
          this: SchemasThis,
          ctx: Context<ParamsOf<typeof registerSchemaParams>, CallerMeta & GatewayMeta>,
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
    },

    methods: {
      async registerSchemaVersion(this: SchemasThis, entry: SchemaRegistration, registeredBy: string) {
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

      async registerCatalogue(this: SchemasThis) {
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
    },
  };
  return schema as Partial<ServiceSchema>;
}
