/**
 * The schema registry's rules, as plain data: whether a payload schema (fastest-validator, JSON-safe: patterns as
 * strings) compiles, and whether a new version of an event type is compatible with the one before it.
 *
 * Compatible means a consumer written for either version can read payloads of the other, as long as it ignores
 * fields it does not know: every field of the previous version is still there, with the same type, and no stricter
 * (not newly required, no enum value taken away); a field the new version adds is optional. Anything else is refused
 * with the offending fields named; a breaking change is a new event type.
 */
import Validator, { type ValidationSchema } from "fastest-validator";

export interface SchemaProblem {
  field: string;
  message: string;
  type: string;
}

interface Rule {
  type: string;
  optional: boolean;
  props?: Record<string, unknown>;
  items?: unknown;
  values?: unknown[];
}

const validator = new Validator({ useNewCustomCheckerFunction: true });

/** A rule in any of fastest-validator's forms ("string|optional", { type }, alternatives) as one shape. */
function ruleOf(raw: unknown): Rule {
  if (typeof raw === "string") {
    const [type, ...flags] = raw.split("|");
    return { type, optional: flags.includes("optional") };
  }
  if (Array.isArray(raw)) return { type: "multi", optional: raw.every((rule) => ruleOf(rule).optional) };
  const rule = (raw ?? {}) as Record<string, unknown>;
  return {
    type: String(rule.type ?? "any"),
    optional: rule.optional === true,
    props: (rule.props ?? rule.properties) as Record<string, unknown> | undefined,
    items: rule.items,
    values: Array.isArray(rule.values) ? rule.values : undefined,
  };
}

const fieldsOf = (schema: Record<string, unknown>) => Object.entries(schema).filter(([name]) => !name.startsWith("$$"));

/** Strings, finite numbers, booleans, null, arrays and plain objects only: what survives a trip through JSON. */
function isPlainJson(value: unknown): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isPlainJson);
  if (typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return (proto === Object.prototype || proto === null) && Object.values(value).every(isPlainJson);
}

/** 422-ready problems if the schema is not one fastest-validator can compile, or is not plain JSON. */
export function schemaDefinitionProblems(schema: unknown): SchemaProblem[] {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    return [{ field: "payload", message: "must be an object of field rules", type: "invalidSchema" }];
  }
  if (!isPlainJson(schema)) {
    return [{ field: "payload", message: "must be plain JSON (patterns as strings)", type: "invalidSchema" }];
  }
  try {
    validator.compile({ ...(schema as ValidationSchema), $$root: false });
    return [];
  } catch (err) {
    return [{ field: "payload", message: (err as Error).message, type: "invalidSchema" }];
  }
}

/** Why `next` cannot follow `previous` as the type's next version; empty when it can. */
export function compatibilityProblems(
  previous: Record<string, unknown>,
  next: Record<string, unknown>,
  path = "payload",
): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const nextFields = new Map(fieldsOf(next));
  for (const [name, rawOld] of fieldsOf(previous)) {
    const field = `${path}.${name}`;
    if (!nextFields.has(name)) {
      problems.push({ field, message: "removed: readers of the previous version expect it", type: "fieldRemoved" });
      continue;
    }
    problems.push(...ruleProblems(ruleOf(rawOld), ruleOf(nextFields.get(name)), field));
  }
  const previousNames = new Set(fieldsOf(previous).map(([name]) => name));
  for (const [name, rawNew] of nextFields) {
    if (!previousNames.has(name) && !ruleOf(rawNew).optional) {
      problems.push({
        field: `${path}.${name}`,
        message: "added as required: payloads of the previous version do not have it",
        type: "requiredFieldAdded",
      });
    }
  }
  return problems;
}

function ruleProblems(old: Rule, next: Rule, field: string): SchemaProblem[] {
  if (old.type !== next.type) {
    return [{ field, message: `type changed from ${old.type} to ${next.type}`, type: "typeChanged" }];
  }
  const problems: SchemaProblem[] = [];
  if (old.optional && !next.optional) {
    problems.push({ field, message: "became required", type: "becameRequired" });
  }
  if (old.values && next.values) {
    const removed = old.values.filter((value) => !next.values!.includes(value));
    if (removed.length > 0) {
      problems.push({ field, message: `values removed: ${removed.join(", ")}`, type: "valuesRemoved" });
    }
  }
  if (old.props && next.props) problems.push(...compatibilityProblems(old.props, next.props, field));
  else if (old.props && !next.props) {
    problems.push({ field, message: "its fields are no longer described", type: "propsRemoved" });
  }
  if (old.items && next.items) problems.push(...ruleProblems(ruleOf(old.items), ruleOf(next.items), `${field}[]`));
  return problems;
}
