/**
 * lib/params.ts: the compile-time half (`Equals` checks, run by `npm run typecheck`) says what `ParamsOf` computes;
 * the runtime half validates inputs with Moleculer's own validator, configured as in moleculer.config.ts, and shows
 * that what comes out is a value of that type (each `expected` below is typed `ParamsOf<...>` and must `toEqual` the
 * validated params).
 */
import { ServiceBroker, Validators, type Context } from "moleculer";
import { CURSOR_PARAM, pageParams } from "../../lib/paging";
import { paramsSchema, type ParamOf, type ParamsOf, type ParamsSchema } from "../../lib/params";

/** `true` only when A and B are the same type (optional and readonly modifiers included). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when `T` is `true`: `typeCheck<Equals<A, B>>()` fails `npm run typecheck` when A and B differ. */
function typeCheck<T extends true>(): T | void {}

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
  kindOf: { type: "equal", value: "action", strict: true },
  change: { type: "any" },
  key: ["string", "number"],
  after: CURSOR_PARAM,
  $$strict: true,
  $$async: false,
});

// ---- compile time ----------------------------------------------------------------------------------------------

typeCheck<
  Equals<
    ParamsOf<typeof listParams>,
    {
      status?: "FIRING" | "RESOLVED" | null;
      search?: string | null;
      from?: Date | null;
      active?: boolean | null;
      page: number;
      pageSize: number;
    }
  >
>();

typeCheck<
  Equals<
    ParamsOf<typeof createParams>,
    {
      id: string;
      email: string;
      kind: string;
      note?: string | null;
      count: number; // `optional` with a `default`: always there after validation
      tags: string[];
      lines: { sku: string; qty: number }[];
      address: { country: string };
      details?: Record<string, unknown> | null;
      reason: string | null;
      kindOf: "action";
      change: unknown;
      key: string | number;
      after: string;
    }
  >
>();

// Single rules, shorthands and the rarer rule types.
typeCheck<Equals<ParamOf<{ type: "uuid" }>, string>>();
typeCheck<Equals<ParamOf<"number|optional">, number | null | undefined>>();
typeCheck<Equals<ParamOf<"number | optional:true">, number | null | undefined>>();
typeCheck<Equals<ParamOf<"number|optional:false">, number>>();
typeCheck<Equals<ParamOf<"uuid|nullable">, string | null>>();
typeCheck<Equals<ParamOf<"uuid[]">, string[]>>();
typeCheck<Equals<ParamOf<{ type: "string"; enum: readonly ["a", "b"] }>, "a" | "b">>();
typeCheck<Equals<ParamOf<{ type: "string"; default: null }>, string>>(); // `default: null` is no default
typeCheck<Equals<ParamOf<{ type: "number"; nullable: true; default: 1 }>, number | null>>();
typeCheck<
  Equals<
    ParamOf<{ type: "multi"; rules: readonly [{ type: "string" }, { type: "boolean" }]; optional: true }>,
    string | boolean | null | undefined
  >
>();
typeCheck<
  Equals<ParamOf<readonly [{ type: "string"; optional: true }, "number|optional"]>, string | number | null | undefined>
>();
typeCheck<Equals<ParamOf<{ type: "tuple"; items: readonly ["string", { type: "number" }] }>, [string, number]>>();
typeCheck<Equals<ParamOf<{ type: "record"; value: { type: "number" } }>, Record<string, number>>>();
typeCheck<Equals<ParamOf<{ type: "class"; instanceOf: typeof Date }>, Date>>();
typeCheck<Equals<ParamOf<{ $$type: "object|optional"; x: { type: "number" } }>, { x: number } | null | undefined>>();
typeCheck<Equals<ParamsOf<{ secret: { type: "forbidden" } }>, { secret?: null }>>();
typeCheck<Equals<ParamOf<{ type: "myCustomRule" }>, unknown>>();
// A widened rule (the schema not kept literal) gives `unknown`, which the handler cannot use by accident.
typeCheck<Equals<ParamOf<{ type: string }>, unknown>>();
// `as const satisfies ParamsSchema` works as well as `paramsSchema()`.
const satisfied = { id: { type: "uuid" }, $$strict: "remove" } as const satisfies ParamsSchema;
typeCheck<Equals<ParamsOf<typeof satisfied>, { id: string }>>();

// ---- runtime -----------------------------------------------------------------------------------------------------

// Moleculer's validator as the broker has it (moleculer.config.ts).
const validator = new Validators.Fastest({
  defaults: { number: { min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER } },
});

/** Validates (and so converts and defaults) `params` in place, as the validator middleware does. */
function validated<S extends ParamsSchema>(schema: S, params: Record<string, unknown>): Record<string, unknown> {
  const result = validator.compile(schema)(params);
  if (result !== true) throw new Error(`invalid: ${JSON.stringify(result)}`);
  return params;
}

describe("ParamsOf", () => {
  it("types the params as the validator leaves them: converted, defaulted, optional ones absent or null", () => {
    const input = { status: "FIRING", from: "2024-05-01T00:00:00Z", active: "true", search: null, page: "2" };
    const expected: ParamsOf<typeof listParams> = {
      status: "FIRING",
      from: new Date("2024-05-01T00:00:00Z"),
      active: true,
      search: null, // `optional: true` lets null through, so the type says `| null`
      page: 2,
      pageSize: 20, // the default, written by the validator: the key is required in the type
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
            typeCheck<Equals<typeof ctx.params, { id: string; reason?: string | null }>>();
            return { id: ctx.params.id, reason: ctx.params.reason ?? "none" };
          },
        },
      },
    });
    await broker.start();
    try {
      await expect(broker.call("typed.cancel", { id: UUID })).resolves.toEqual({ id: UUID, reason: "none" });
      await expect(broker.call("typed.cancel", { id: UUID, reason: null })).resolves.toEqual({
        id: UUID,
        reason: "none",
      });
      await expect(broker.call("typed.cancel", { id: "nope" })).rejects.toMatchObject({ code: 422 });
    } finally {
      await broker.stop();
    }
  });
});
