/**
 * Action parameter types derived from the actions' validation schemas (fastest-validator, Moleculer's validator).
 *
 * An action's `params` schema is what the validator enforces before the handler runs; a hand-written `Context<X>`
 * next to it is a second description of the same thing that nothing checks, and the two drift (a field validated but
 * not typed, an optional one typed as required, an enum widened to `string`). `ParamsOf<typeof schema>` is the type
 * of `ctx.params` *after* validation, computed from the schema itself, so the handler's type cannot drift from it:
 *
 * ```ts
 * const cancelParams = paramsSchema({
 *   id: { type: "uuid" },
 *   reason: { type: "string", max: 500, optional: true },
 *   $$strict: true,
 * });
 * // ...
 * cancel: {
 *   params: cancelParams,
 *   async handler(this: OrdersThis, ctx: Context<ParamsOf<typeof cancelParams>, OrdersMeta>) { ... },
 * },
 * ```
 *
 * The schema must keep its literal types (`type: "uuid"`, `values: ["A", "B"]`): write it through `paramsSchema()`
 * (a TS 5 `const` type parameter) or as `{ ... } as const satisfies ParamsSchema`. A constant spread into it
 * (`...pageParams(100)`, `...PRODUCT_FIELDS`) must itself be `as const`; a widened rule (`type: string`) types as
 * `unknown`, which the handler then fails to use, so a lost literal shows up as a compile error, not a silent `any`.
 * Two losses do not show up that way: `values` from a `string[]` gives `string`, not a union, and a spread constant
 * typed with an index signature (built with `Object.fromEntries`) adds no keys at all; give such constants their keys.
 *
 * What the validator does, and so what the types say (Moleculer's `Validators.Fastest` with `PARAMS_VALIDATOR_OPTIONS`
 * below, as in moleculer.config.ts: a `null` is a value, and every rule type defaults to `nullable: false`):
 * - `optional: true`: the key may be absent, so the type is `key?: T`. A `null` is refused, optional or not.
 * - `nullable: true`: a `null` is accepted and kept, so the type is `T | null` (`key?: T | null` with `optional`).
 * - `default: v` (not `null`/`undefined`): the validator writes the default for an absent value, and for a `null`
 *   one unless the rule is `nullable`, so the key is **required** in the handler's type, even with `optional: true`
 *   (`key: T`; `T | null` with `nullable: true`). Callers may still leave it out: this is the type after validation,
 *   not the caller's.
 * - The array shorthand (`[rule, rule]`, a `multi`) is never nullable under these options, whatever its rules say;
 *   the object form `{ type: "multi", rules, nullable: true }` is.
 * - `convert: true` changes what is accepted, not the result: a `number` rule still yields a `number`.
 * - `$$strict`, `$$async` and every other `$$` key are options, not parameters. `$$root` schemas are not handled.
 * - `enum` values, a string's `enum`, and `equal`'s `value` give literal unions; `equal` without `strict: true`
 *   compares with `==`, so its type is what the value should be, not every value `==` lets through.
 * - `type: "forbidden"` gives an optional key that can only be `null`/`undefined` (the one rule `null` always passes).
 * - An object without `strict` (or a schema without `$$strict`) lets undeclared keys through; the type names only the
 *   declared ones, as TypeScript object types do.
 * - Types this file does not know (custom rules, aliases, `custom`, `objectID`) give `unknown`.
 * All of this holds for the broker's validator only: a schema compiled with other options may let through what its
 * type rules out (fastest-validator's own defaults let a `null` through every optional rule).
 */

/** One rule of a params schema: the object form, a shorthand string (`"string|optional"`), or an array (multi). */
export type ParamRule = string | ParamRuleObject | readonly ParamRule[];

/** The object form of a rule; only the keys that decide the type are spelled out. */
export interface ParamRuleObject {
  readonly type?: string;
  readonly $$type?: string;
  readonly optional?: boolean;
  readonly nullable?: boolean;
  readonly default?: unknown;
  readonly [option: string]: unknown;
}

/** A params schema: a rule per parameter, plus `$$` options (`$$strict: true`). Accepts readonly (const) schemas. */
export interface ParamsSchema {
  readonly [key: string]: ParamRule | boolean | undefined;
}

/**
 * Returns the schema unchanged, typed with its literals kept (`"uuid"`, not `string`; `readonly ["A", "B"]`, not
 * `string[]`), for `ParamsOf<typeof schema>`. The result is still assignable to Moleculer's `ActionSchema.params`.
 */
export function paramsSchema<const S extends ParamsSchema>(schema: S): S {
  return schema;
}

/** The type of `ctx.params` after the validator has checked (and converted, and defaulted) it against `S`. */
export type ParamsOf<S> = Simplify<
  {
    -readonly [K in keyof S as ParamKey<K, S[K], false>]:
      Base<Normalize<S[K]>> | OrNull<Normalize<S[K]>> | OrUndefined<Normalize<S[K]>>;
  } & {
    -readonly [K in keyof S as ParamKey<K, S[K], true>]?:
      Base<Normalize<S[K]>> | OrNull<Normalize<S[K]>> | OrUndefined<Normalize<S[K]>>;
  }
>;

/** The type of one parameter after validation, `undefined` and `null` included where the rule lets them through. */
export type ParamOf<R> = Base<Normalize<R>> | OrNull<Normalize<R>> | OrUndefined<Normalize<R>>;

/**
 * `true` when A and B are the same type, optional and readonly modifiers included (mutual assignability is not enough:
 * it does not tell `key?: T` from `key: T | undefined`).
 */
export type SameType<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/**
 * A compile-time check that does nothing at run time: `assertType<SameType<A, B>>()` fails `npm run typecheck` ("Type
 * 'false' does not satisfy the constraint 'true'") when A and B differ. For a plain type that has to stay written out
 * next to the schema that validates it (a contracts/ type: the console and other clients read those as plain types,
 * without this module): `assertType<SameType<ParamsOf<typeof schema>, ThePlainType>>()` keeps the two from drifting.
 */
export function assertType<Check extends true>(): Check | void {}

/** fastest-validator's rule types, `forbidden` aside (a forbidden parameter may be absent or null). */
const RULE_TYPES = [
  "any",
  "array",
  "boolean",
  "class",
  "currency",
  "custom",
  "date",
  "email",
  "enum",
  "equal",
  "function",
  "luhn",
  "mac",
  "multi",
  "number",
  "object",
  "objectID",
  "record",
  "string",
  "tuple",
  "url",
  "uuid",
] as const;

/**
 * The options of the broker's parameter validator (moleculer.config.ts):
 * - a null is a value like any other, refused unless its rule says `nullable: true` (a rule with a `default` takes the
 *   default instead). fastest-validator otherwise lets a null through every optional parameter, and handlers read
 *   it as a value they never expect: `{"displayName": null}` was a 500. A null is refused as a missing value is
 *   (`required`: the field needs a value);
 * - every number a parameter schema accepts is bounded unless the schema says otherwise: an unbounded one
 *   (`page=99999999999999999999`) reached the database as a value out of its range.
 */
export const PARAMS_VALIDATOR_OPTIONS = {
  considerNullAsAValue: true,
  defaults: Object.fromEntries(
    RULE_TYPES.map((type) => [
      type,
      type === "number"
        ? { nullable: false, min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }
        : { nullable: false },
    ]),
  ),
};

// ---------------------------------------------------------------------------------------------------------------------

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** `K` when it is a parameter (not a `$$` option) whose key is optional (`Optional`) or required (`!Optional`). */
type ParamKey<K, R, Optional extends boolean> = K extends `$$${string}`
  ? never
  : IsOptionalKey<Normalize<R>> extends Optional
    ? K
    : never;

/** A flag set to `true` (a widened `boolean` counts: it may be). */
type Flag<R, Name extends string> = R extends { readonly [P in Name]: infer V }
  ? true extends V
    ? true
    : false
  : false;

/** Has a `default` the validator applies (`null` and `undefined` are no default to it). */
type HasDefault<R> = R extends { readonly default: infer D } ? ([D] extends [null | undefined] ? false : true) : false;

/** The key may be absent after validation: `optional` (or `forbidden`) and no default to fill it. */
type IsOptionalKey<R> =
  HasDefault<R> extends true
    ? false
    : Flag<R, "optional"> extends true
      ? true
      : R extends { readonly type: "forbidden" }
        ? true
        : false;

/** May be `null` after validation: only a `nullable` rule (or a `forbidden` one) lets a `null` through. */
type AllowsNull<R> = Flag<R, "nullable"> extends true ? true : R extends { readonly type: "forbidden" } ? true : false;

/** The `null` and `undefined` a rule's flags let through (two aliases, so hovers show `T | null`, not an alias). */
type OrNull<R> = AllowsNull<R> extends true ? null : never;
type OrUndefined<R> = IsOptionalKey<R> extends true ? undefined : never;

// Shorthands, resolved as the validator's `resolveType` does: "type|flag|key:value", "type[]", [rules], { $$type }.

type Split<S extends string> = S extends `${infer Head}|${infer Rest}` ? [Head, ...Split<Rest>] : [S];
type Trim<S extends string> = S extends ` ${infer T}` ? Trim<T> : S extends `${infer T} ` ? Trim<T> : S;
type ShorthandFlag<Parts extends string[], Name extends string> = [
  Extract<Trim<Parts[number]>, Name | `${Name}:true`>,
] extends [never]
  ? false
  : true;
type Shorthand<S extends string> =
  Split<S> extends [infer Type extends string, ...infer Rest extends string[]]
    ? (Trim<Type> extends `${infer Item}[]` ? { type: "array"; items: Item } : { type: Trim<Type> }) & {
        optional: ShorthandFlag<Rest, "optional">;
        nullable: ShorthandFlag<Rest, "nullable">;
      }
    : never;

type Every<Rules extends readonly unknown[], Name extends string> = false extends {
  [I in keyof Rules]: Flag<Normalize<Rules[I]>, Name>;
}[number]
  ? false
  : true;

type Normalize<R> = R extends string
  ? Shorthand<R>
  : R extends readonly unknown[]
    ? { type: "multi"; rules: R; optional: Every<R, "optional">; nullable: false } // see the header: never nullable
    : R extends { readonly $$type: infer T extends string }
      ? Omit<Shorthand<T>, "type" | "props"> & { type: "object"; props: Omit<R, "$$type"> }
      : R;

// The value each rule type yields (without the `null`/`undefined` its flags add).

/** A tuple's rules mapped to its values (homomorphic over `T`, so the result is a tuple, not an object). */
type TupleOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: ParamOf<T[I]> };

/** The rule types whose value does not depend on the rule's options. */
interface Scalars {
  uuid: string;
  email: string;
  url: string;
  currency: string;
  luhn: string;
  mac: string;
  number: number;
  boolean: boolean;
  date: Date;
  function: (...args: never[]) => unknown;
  forbidden: never;
  any: unknown;
}

type Base<R> = R extends { readonly type: infer T }
  ? T extends keyof Scalars
    ? Scalars[T]
    : T extends "string"
      ? R extends { readonly enum: readonly (infer E)[] }
        ? E
        : string
      : T extends "enum"
        ? R extends { readonly values: readonly (infer V)[] }
          ? V
          : unknown
        : T extends "equal"
          ? R extends { readonly value: infer V }
            ? V
            : unknown
          : T extends "array"
            ? R extends { readonly items: infer I }
              ? ParamOf<I>[]
              : R extends { readonly enum: readonly (infer E)[] }
                ? E[]
                : unknown[]
            : T extends "tuple"
              ? R extends { readonly items: infer I extends readonly unknown[] }
                ? TupleOf<I>
                : unknown[]
              : T extends "object"
                ? R extends { readonly props: infer P }
                  ? ParamsOf<P>
                  : R extends { readonly properties: infer P }
                    ? ParamsOf<P>
                    : Record<string, unknown>
                : T extends "record"
                  ? Record<
                      R extends { readonly key: infer K } ? Extract<ParamOf<K>, PropertyKey> : string,
                      R extends { readonly value: infer V } ? ParamOf<V> : unknown
                    >
                  : T extends "multi"
                    ? R extends { readonly rules: readonly (infer Rule)[] }
                      ? Base<Normalize<Rule>>
                      : unknown
                    : T extends "class"
                      ? R extends { readonly instanceOf: abstract new (...args: never) => infer I }
                        ? I
                        : unknown
                      : unknown // custom rules, aliases, "custom", "objectID"
  : unknown;
