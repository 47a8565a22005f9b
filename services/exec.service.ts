/**
 * exec (Service 5): event-driven rules. It consumes every domain event (consumer group `exec`), and for each enabled
 * rule of the event's type whose conditions hold, calls the rule's action as the system, with parameters mapped from
 * the event and an idempotency key (`<rule id>:<event id>`) so a redelivered event does not act twice. The event was
 * validated against the catalogue before any rule sees it. A failure that retrying cannot fix (a validation error of
 * the action, a rule naming an action that is not triggerable) or that outlasts the retries dead-letters the event
 * and publishes `exec.failed` through the outbox. Only actions that declare `triggerable: true` can be rule actions.
 */
import { randomUUID } from "node:crypto";
import type { ActionSchema, Context, Service, ServiceBroker, ServiceSchema } from "moleculer";
import { UniqueConstraintError, type Transaction } from "sequelize";
import { deterministicId } from "../lib/delivery";
import { ConflictError, NotFoundError, invalidFields, type FieldProblem } from "../lib/errors";
import { DOMAIN_EVENT_TYPES } from "../lib/event-types";
import { createEnvelope, type EventEnvelope } from "../lib/events";
import type { GatewayMeta } from "../lib/gateway-meta";
import { pageOf, pageParams, type Page } from "../lib/paging";
import { assertType, paramsSchema, type ParamsOf, type SameType } from "../lib/params";
import { selectPage } from "../lib/database";
import { SYSTEM_CALLER } from "../lib/permissions";
import { CONDITION_OPERATORS, PATH_PATTERN, mapParams, matches } from "../lib/rules";
import execMigrations from "../migrations/exec";
import { consumerMixin, type EventHandler } from "../mixins/consumer.mixin";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { storableJson } from "../lib/storable";
import type { Rule, RuleInput, Task } from "../contracts/exec";
import { toRule, toTask, type RuleRow, type TaskRow } from "../lib/exec-rows";

const ADMIN = ["exec:admin"];
const MAX_PAGE_SIZE = 100;

const ruleParams = {
  name: { type: "string", min: 1, max: 200, trim: true },
  event: { type: "string", min: 1, max: 200 },
  condition: {
    type: "array",
    max: 20,
    default: [],
    items: {
      type: "object",
      strict: true,
      props: {
        path: { type: "string", max: 300, pattern: PATH_PATTERN },
        op: { type: "enum", values: [...CONDITION_OPERATORS] },
        value: { type: "any", optional: true },
      },
    },
  },
  action: { type: "string", min: 3, max: 200, pattern: /^[A-Za-z][\w-]*(\.[A-Za-z][\w-]*)+$/ },
  params: { type: "object", default: {} },
  enabled: { type: "boolean", default: true },
} as const;
// `RuleInput` is a contract (the REPL, tests and benches write rules with it), kept written out: a field added to it
// and not here would be refused by `$$strict`, so the typecheck says so first.
assertType<SameType<ParamsOf<typeof ruleParams>, RuleInput>>();

const rulesListParams = paramsSchema({ ...pageParams(MAX_PAGE_SIZE), $$strict: true });
const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });
const createRuleParams = paramsSchema({ ...ruleParams, $$strict: true });
const updateRuleParams = paramsSchema({ id: { type: "uuid" }, ...ruleParams, $$strict: true });
const tasksListParams = paramsSchema({
  kind: { type: "string", max: 64, optional: true },
  subject: { type: "string", max: 200, optional: true },
  ...pageParams(MAX_PAGE_SIZE, 20),
  $$strict: true,
});
const createTaskParams = paramsSchema({
  kind: { type: "string", min: 1, max: 64 },
  title: { type: "string", min: 1, max: 500 },
  subject: { type: "string", max: 200, optional: true },
  details: { type: "object", optional: true },
  $$strict: true,
});

interface ExecMethods {
  checkRule(input: RuleInput): void;
  findRule(id: string): Promise<RuleRow>;
  saveRule(sql: string, bind: unknown[]): Promise<Rule>;
}

type ExecThis = Service<DbSettings> & DbServiceThis & DbMethods & ExecMethods & OutboxMethods;

/** The schema of an action anywhere in the cluster (custom keys such as `triggerable` included), if it is known. */
function actionSchema(broker: ServiceBroker, name: string): ActionSchema | undefined {
  return broker.registry
    .getActionList({ skipInternal: true, withEndpoints: false })
    .find((entry) => entry.name === name)?.action as ActionSchema | undefined;
}

/** Runs the enabled rules of the event's type; an error propagates to the consumer mixin's retry and DLQ. */
const runRules: EventHandler<ExecThis> = async function (envelope: EventEnvelope, transaction: Transaction) {
  const rules = await this.rows<RuleRow>(
    "SELECT * FROM rules WHERE enabled AND event = $1 ORDER BY created_at, id",
    [envelope.type],
    { transaction },
  );
  for (const rule of rules) {
    if (!matches(rule.condition, envelope)) continue;
    const triggerable = actionSchema(this.broker, rule.action);
    if (triggerable && !triggerable.triggerable) {
      throw invalidFields(`Rule "${rule.name}" names ${rule.action}, which is not triggerable`, [
        { field: "action", message: "not triggerable", type: "actionNotTriggerable", actual: rule.action },
      ]);
    }
    // An action not (yet) in the registry fails with a retryable ServiceNotFoundError, so the event waits for it.
    await this.broker.call(rule.action, mapParams(rule.params, envelope) as object, {
      meta: { caller: SYSTEM_CALLER, idempotencyKey: `${rule.id}:${envelope.id}` },
      requestID: envelope.correlationId,
    });
    this.logger.info(
      `Rule "${rule.name}" ran ${rule.action} for ${envelope.type} ${envelope.id} (correlation ${envelope.correlationId})`,
    );
  }
};

const ExecService: ServiceSchema<DbSettings, DbMethods & ExecMethods & OutboxMethods, DbServiceThis> = {
  name: "exec",
  mixins: [
    outboxMixin(),
    dbMixin({
      service: "exec",
      migrations: execMigrations,
    }),
    consumerMixin<ExecThis>({
      group: "exec",
      handlers: Object.fromEntries(DOMAIN_EVENT_TYPES.map((type) => [type, runRules])),
      async onDeadLetter({ deadLetterId, envelope, error, attempts }) {
        const failed = createEnvelope(
          "exec.failed",
          { event: { id: envelope?.id ?? "", type: envelope?.type ?? "" }, attempts, error },
          { source: "exec", correlationId: envelope?.correlationId ?? deadLetterId, causationId: envelope?.id ?? null },
        );
        failed.id = deterministicId("exec.failed", deadLetterId);
        await this.sequelize.transaction((transaction) => this.enqueueEvent(transaction, failed));
      },
    }),
  ],

  actions: {
    /** The rules, built-in ones first (a few dozen: all of them unless paged). `exec:admin`. */
    "rules.list": {
      rest: "GET /rules",
      list: "page",
      permissions: ADMIN,
      params: rulesListParams,
      async handler(this: ExecThis, ctx: Context<ParamsOf<typeof rulesListParams>>): Promise<Page<Rule>> {
        const rows = await this.rows<RuleRow>("SELECT * FROM rules ORDER BY built_in DESC, name");
        return pageOf(rows.map(toRule), ctx.params);
      },
    },

    /** One rule. `exec:admin`. */
    "rules.get": {
      rest: "GET /rules/:id",
      permissions: ADMIN,
      params: idParams,
      async handler(this: ExecThis, ctx: Context<ParamsOf<typeof idParams>>): Promise<Rule> {
        return toRule(await this.findRule(ctx.params.id));
      },
    },

    /**
     * Creates a rule: `event` must be a catalogued domain event and `action` an action that declares itself
     * triggerable (422 otherwise); a duplicate name is 409. `exec:admin`.
     */
    "rules.create": {
      audit: { entity: "rule" },
      rest: "POST /rules",
      status: 201,
      permissions: ADMIN,
      params: createRuleParams,
      async handler(this: ExecThis, ctx: Context<ParamsOf<typeof createRuleParams>, GatewayMeta>): Promise<Rule> {
        this.checkRule(ctx.params);
        const { name, event, condition, action, params, enabled } = ctx.params;
        const rule = await this.saveRule(
          `INSERT INTO rules (id, name, event, condition, action, params, enabled)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
          [randomUUID(), name, event, storableJson(condition), action, storableJson(params), enabled],
        );
        ctx.meta.$location = `/api/exec/rules/${rule.id}`;
        return rule;
      },
    },

    /** Replaces a rule's definition (built-in ones too: that is how their thresholds are tuned). `exec:admin`. */
    "rules.update": {
      audit: { entity: "rule" },
      rest: "PUT /rules/:id",
      permissions: ADMIN,
      params: updateRuleParams,
      async handler(this: ExecThis, ctx: Context<ParamsOf<typeof updateRuleParams>>): Promise<Rule> {
        this.checkRule(ctx.params);
        await this.findRule(ctx.params.id);
        const { id, name, event, condition, action, params, enabled } = ctx.params;
        return this.saveRule(
          `UPDATE rules SET name = $2, event = $3, condition = $4, action = $5, params = $6, enabled = $7,
             version = version + 1, updated_at = now() WHERE id = $1 RETURNING *`,
          [id, name, event, storableJson(condition), action, storableJson(params), enabled],
        );
      },
    },

    /** Deletes a rule; built-in rules can only be disabled (409). `exec:admin`. */
    "rules.remove": {
      audit: { entity: "rule" },
      rest: "DELETE /rules/:id",
      permissions: ADMIN,
      params: idParams,
      async handler(this: ExecThis, ctx: Context<ParamsOf<typeof idParams>>): Promise<Rule> {
        const row = await this.findRule(ctx.params.id);
        if (row.built_in) {
          throw new ConflictError("Built-in rules can be disabled, not deleted", "CONFLICT", { id: row.id });
        }
        await this.rows("DELETE FROM rules WHERE id = $1 RETURNING id", [row.id]);
        return toRule(row);
      },
    },

    /** Operator tasks the rules created, newest first. `exec:admin`. */
    "tasks.list": {
      rest: "GET /tasks",
      list: "page",
      permissions: ADMIN,
      params: tasksListParams,
      async handler(this: ExecThis, ctx: Context<ParamsOf<typeof tasksListParams>>): Promise<Page<Task>> {
        const { kind, subject, page, pageSize } = ctx.params;
        const where = "($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR subject = $2)";
        const query = { table: "tasks", where, order: "created_at DESC, id", bind: [kind ?? null, subject ?? null] };
        return selectPage<TaskRow, Task>(this.rows, query, page, pageSize, toTask);
      },
    },

    /**
     * Opens an operator task (a rule action). Idempotent under `meta.idempotencyKey`: the same key returns the task it
     * created first. System only.
     */
    "tasks.create": {
      audit: { entity: "task" },
      triggerable: true,
      params: createTaskParams,
      async handler(this: ExecThis, ctx: Context<ParamsOf<typeof createTaskParams>, GatewayMeta>): Promise<Task> {
        const key = ctx.meta.idempotencyKey ?? randomUUID();
        const { kind, title, subject, details } = ctx.params;
        await this.rows(
          `INSERT INTO tasks (id, kind, title, subject, details, idempotency_key, correlation_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`,
          [randomUUID(), kind, title, subject ?? null, storableJson(details ?? {}), key, ctx.requestID ?? null],
        );
        const [row] = await this.rows<TaskRow>("SELECT * FROM tasks WHERE idempotency_key = $1", [key]);
        return toTask(row);
      },
    },
  },

  methods: {
    /** 422 unless the event is a catalogued domain event and the action is known and triggerable. */
    checkRule(this: ExecThis, input: RuleInput) {
      const problems: FieldProblem[] = [];
      if (!DOMAIN_EVENT_TYPES.includes(input.event)) {
        problems.push({
          field: "event",
          message: `not a domain event; one of ${DOMAIN_EVENT_TYPES.join(", ")}`,
          type: "unknownEvent",
          actual: input.event,
        });
      }
      const action = actionSchema(this.broker, input.action);
      if (!action?.triggerable) {
        problems.push({
          field: "action",
          message: action ? "the action is not triggerable by rules" : "no such action in the cluster",
          type: action ? "actionNotTriggerable" : "unknownAction",
          actual: input.action,
        });
      }
      if (problems.length > 0) throw invalidFields("The rule cannot be saved as given", problems);
    },

    async findRule(this: ExecThis, id: string) {
      const [row] = await this.rows<RuleRow>("SELECT * FROM rules WHERE id = $1", [id]);
      if (!row) throw new NotFoundError("Rule", id);
      return row;
    },

    async saveRule(this: ExecThis, sql: string, bind: unknown[]) {
      try {
        const [row] = await this.rows<RuleRow>(sql, bind);
        return toRule(row);
      } catch (err) {
        if (err instanceof UniqueConstraintError) {
          throw new ConflictError(`A rule named "${String(bind[1])}" exists`, "DUPLICATE", { field: "name" });
        }
        throw err;
      }
    },
  },
};

export default ExecService;
