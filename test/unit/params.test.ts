/**
 * lib/params.ts: the compile-time half (`SameType` checks, run by `npm run typecheck`) says what `ParamsOf` computes;
 * the runtime half validates inputs with Moleculer's own validator, built with the broker's options
 * (`PARAMS_VALIDATOR_OPTIONS`), and shows that what comes out is a value of that type (each `expected` below is typed
 * `ParamsOf<...>` and must `toEqual` the validated params).
 */
import { ServiceBroker, Validators, type Context } from "moleculer";
import { CURSOR_PARAM, pageParams } from "../../lib/paging";
import {
  PARAMS_VALIDATOR_OPTIONS,
  assertType,
  paramsSchema,
  type ParamOf,
  type ParamsOf,
  type ParamsSchema,
  type SameType,
} from "../../lib/params";

const UUID = "0b5a9f3c-3b1e-4f4e-9d7a-2f1c8e6b5a40";

const listParams = paramsSchema({
  status: { type: "enum", values: ["FIRING", "RESOLVED"], optional: true },
  search: { type: "string", trim: true, max: 100, optional: true },
  from: { type: "date", convert: true, optional: true },
  active: { type: "boolean", convert: true, optional: true },
  ...pageParams(100, 20),
  $$strict: true,
});

const createParams = paramsSchema({
  id: { type: "uuid" },
  email: { type: "email", normalize: true, max: 320 },
  kind: "string",
  note: "string|optional",
  count: { type: "number", integer: true, min: 0, optional: true, default: 0 },
  tags: { type: "array", max: 5, items: "string", default: [] },
  lines: {
    type: "array",
    min: 1,
    items: {
      type: "object",
      strict: true,
      props: { sku: { type: "string" }, qty: { type: "number", positive: true } },
    },
  },
  address: { type: "object", props: { country: { type: "string", pattern: /^[A-Z]{2}$/ } } },
  details: { type: "object", optional: true },
  reason: { type: "string", nullable: true },
  comment: { type: "string", nullable: true, optional: true },
  limit: { type: "number", nullable: true, default: 10 },
  kindOf: { type: "equal", value: "action", strict: true },
  change: { type: "any" },
  key: ["string", "number"],
  after: CURSOR_PARAM,
  $$strict: true,
  $$async: false,
});

// ---- compile time ----------------------------------------------------------------------------------------------

assertType<
  SameType<
    ParamsOf<typeof listParams>,
    {
      status?: "FIRING" | "RESOLVED";
      search?: string;
      from?: Date;
      active?: boolean;
      page: number;
      pageSize: number;
    }
  >
>();

assertType<
  SameType<
    ParamsOf<typeof createParams>,
    {
      id: string;
      email: string;
      kind: string;
      note?: string;
      count: number; // `optional` with a `default`: always there after validation (a null becomes the default)
      tags: string[];
      lines: { sku: string; qty: number }[];
      address: { country: string };
      details?: Record<string, unknown>;
      reason: string | null;
      comment?: string | null;
      limit: number | null; // `nullable` with a `default`: the default for an absent value, a null kept
      kindOf: "action";
      change: unknown;
      key: string | number;
      after: string;
    }
  >
>();

// Single rules, shorthands and the rarer rule types.
assertType<SameType<ParamOf<{ type: "uuid" }>, string>>();
assertType<SameType<ParamOf<"number|optional">, number | undefined>>();
assertType<SameType<ParamOf<"number | optional:true">, number | undefined>>();
assertType<SameType<ParamOf<"number|optional|nullable">, number | null | undefined>>();
assertType<SameType<ParamOf<"number|optional:false">, number>>();
assertType<SameType<ParamOf<"uuid|nullable">, string | null>>();
assertType<SameType<ParamOf<"uuid[]">, string[]>>();
assertType<SameType<ParamOf<{ type: "string"; enum: readonly ["a", "b"] }>, "a" | "b">>();
assertType<SameType<ParamOf<{ type: "string"; default: null }>, string>>(); // `default: null` is no default
assertType<SameType<ParamOf<{ type: "number"; nullable: true; default: 1 }>, number | null>>();
assertType<
  SameType<
    ParamOf<{ type: "multi"; rules: readonly [{ type: "string" }, { type: "boolean" }]; optional: true }>,
    string | boolean | undefined
  >
>();
assertType<
  SameType<ParamOf<{ type: "multi"; rules: readonly ["string", "number"]; nullable: true }>, string | number | null>
>();
assertType<
  SameType<ParamOf<readonly [{ type: "string"; optional: true }, "number|optional"]>, string | number | undefined>
>();
// The array shorthand is never nullable under the broker's options, even when every one of its rules is.
assertType<SameType<ParamOf<readonly ["string|nullable", "number|nullable"]>, string | number>>();
assertType<SameType<ParamOf<{ type: "tuple"; items: readonly ["string", { type: "number" }] }>, [string, number]>>();
assertType<SameType<ParamOf<{ type: "record"; value: { type: "number" } }>, Record<string, number>>>();
assertType<SameType<ParamOf<{ type: "class"; instanceOf: typeof Date }>, Date>>();
assertType<SameType<ParamOf<{ $$type: "object|optional"; x: { type: "number" } }>, { x: number } | undefined>>();
assertType<SameType<ParamsOf<{ secret: { type: "forbidden" } }>, { secret?: null }>>();
assertType<SameType<ParamOf<{ type: "myCustomRule" }>, unknown>>();
// A widened rule (the schema not kept literal) gives `unknown`, which the handler cannot use by accident.
assertType<SameType<ParamOf<{ type: string }>, unknown>>();
// `as const satisfies ParamsSchema` works as well as `paramsSchema()`.
const satisfied = { id: { type: "uuid" }, $$strict: "remove" } as const satisfies ParamsSchema;
assertType<SameType<ParamsOf<typeof satisfied>, { id: string }>>();

// ---- runtime -----------------------------------------------------------------------------------------------------

// Moleculer's validator as the broker has it (moleculer.config.ts).
const validator = new Validators.Fastest(PARAMS_VALIDATOR_OPTIONS);

/** Validates (and so converts and defaults) `params` in place, as the validator middleware does. */
function validated<S extends ParamsSchema>(schema: S, params: Record<string, unknown>): Record<string, unknown> {
  const result = validator.compile(schema)(params);
  if (result !== true) throw new Error(`invalid: ${JSON.stringify(result)}`);
  return params;
}

describe("ParamsOf", () => {
  it("types the params as the validator leaves them: converted, defaulted, optional ones absent", () => {
    const input = { status: "FIRING", from: "2024-05-01T00:00:00Z", active: "true", page: "2", pageSize: null };
    const expected: ParamsOf<typeof listParams> = {
      status: "FIRING",
      from: new Date("2024-05-01T00:00:00Z"),
      active: true,
      page: 2,
      pageSize: 20, // the default, written by the validator for a null as for an absent value: the key is required
    };
    expect(validated(listParams, input)).toEqual(expected);
  });

  it("types a nested schema, arrays, shorthands, equal, multi and the cursor constant", () => {
    const input = {
      id: UUID,
      email: " Someone@Example.com ",
      kind: "refund",
      lines: [{ sku: "A-1", qty: 2 }],
      address: { country: "DE", city: "Berlin" }, // not strict: extra keys pass, untyped
      reason: null,
      count: null, // a null takes the default, as an absent value does
      limit: null, // ... unless the rule is nullable: then the null is kept
      kindOf: "action",
      change: { any: ["thing"] },
      key: 7,
    };
    const expected: ParamsOf<typeof createParams> = {
      id: UUID,
      email: "someone@example.com",
      kind: "refund",
      count: 0,
      tags: [],
      lines: [{ sku: "A-1", qty: 2 }],
      address: { country: "DE" },
      reason: null,
      limit: null,
      kindOf: "action",
      change: { any: ["thing"] },
      key: 7,
      after: "0",
    };
    expect(validated(createParams, input)).toEqual({ ...expected, address: { country: "DE", city: "Berlin" } });
  });

  it("rejects at runtime what the type rules out", () => {
    // @ts-expect-error: not one of the enum values
    const badStatus: ParamsOf<typeof listParams> = { status: "OPEN", page: 1, pageSize: 20 };
    expect(validator.compile(listParams)(badStatus)).not.toBe(true);
    // @ts-expect-error: `optional` lets a key be absent, not null: the broker's validator refuses a null
    const nullSearch: ParamsOf<typeof listParams> = { search: null, page: 1, pageSize: 20 };
    expect(validator.compile(listParams)(nullSearch)).not.toBe(true);
    // @ts-expect-error: the same holds inside an object and for a rule with no `optional` at all
    const nullQty: ParamsOf<typeof createParams>["lines"] = [{ sku: "A-1", qty: null }];
    expect(validator.compile({ lines: createParams.lines })({ lines: nullQty })).not.toBe(true);
    // @ts-expect-error: `reason` is nullable, not optional: it must be there, if only as null
    const noReason: Pick<ParamsOf<typeof createParams>, "reason"> = {};
    expect(validator.compile({ reason: createParams.reason })(noReason)).not.toBe(true);
    // @ts-expect-error: `$$strict: "remove"` drops unknown keys, and the type has none
    const extra: ParamsOf<typeof satisfied> = { id: UUID, extra: 1 };
    expect(validated(satisfied, extra)).toEqual({ id: UUID });
  });

  it("declares a Moleculer action whose handler is typed from its schema", async () => {
    const cancelParams = paramsSchema({
      id: { type: "uuid" },
      reason: { type: "string", max: 500, optional: true },
      $$strict: true,
    });
    const broker = new ServiceBroker({ logger: false, validator });
    broker.createService({
      name: "typed",
      actions: {
        cancel: {
          params: cancelParams,
          handler(ctx: Context<ParamsOf<typeof cancelParams>>) {
            assertType<SameType<typeof ctx.params, { id: string; reason?: string }>>();
            return { id: ctx.params.id, reason: ctx.params.reason ?? "none" };
          },
        },
      },
    });
    await broker.start();
    try {
      await expect(broker.call("typed.cancel", { id: UUID })).resolves.toEqual({ id: UUID, reason: "none" });
      await expect(broker.call("typed.cancel", { id: UUID, reason: null })).rejects.toMatchObject({ code: 422 });
      await expect(broker.call("typed.cancel", { id: "nope" })).rejects.toMatchObject({ code: 422 });
    } finally {
      await broker.stop();
    }
  });
});
