/**
 * exec rules as plain data: when a rule's conditions hold for an event, and what parameters its action gets. Paths
 * start at the envelope (`$.payload.order.total.amount`, `$.correlationId`); a string parameter that is such a path
 * takes the value there, any other value is passed as written. No broker, no database.
 */
import type { EventEnvelope } from "./events";

export const CONDITION_OPERATORS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];

export interface Condition {
  path: string;
  op: ConditionOperator;
  value?: unknown;
}

export const PATH_PATTERN = /^\$(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** The value at `path` in the envelope, or undefined when any step is missing. */
export function valueAt(envelope: EventEnvelope, path: string): unknown {
  let value: unknown = envelope;
  for (const key of path.split(".").slice(1)) {
    if (value === null || typeof value !== "object" || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function holds(condition: Condition, actual: unknown): boolean {
  const { op, value } = condition;
  switch (op) {
    case "exists":
      return (actual !== undefined && actual !== null) === (value ?? true);
    case "eq":
      return actual === value;
    case "ne":
      return actual !== value;
    case "in":
      return Array.isArray(value) && value.includes(actual);
    default: {
      // Ordering compares numbers with numbers and strings with strings, nothing else.
      if (typeof actual !== typeof value || !["number", "string"].includes(typeof actual)) return false;
      const [a, b] = [actual as number | string, value as number | string];
      return op === "gt" ? a > b : op === "gte" ? a >= b : op === "lt" ? a < b : a <= b;
    }
  }
}

/** All conditions hold (an empty list always does). */
export function matches(conditions: readonly Condition[], envelope: EventEnvelope): boolean {
  return conditions.every((condition) => holds(condition, valueAt(envelope, condition.path)));
}

/** The action's parameters: paths replaced by the envelope's values, recursively through objects and arrays. */
export function mapParams(template: unknown, envelope: EventEnvelope): unknown {
  if (typeof template === "string" && template.startsWith("$") && PATH_PATTERN.test(template)) {
    return valueAt(envelope, template);
  }
  if (Array.isArray(template)) return template.map((item) => mapParams(item, envelope));
  if (template !== null && typeof template === "object") {
    return Object.fromEntries(Object.entries(template).map(([key, value]) => [key, mapParams(value, envelope)]));
  }
  return template;
}
