/**
 * What the gateway refuses in any request's parameters (body, query and path alike) before a service sees them:
 * JSON nested deeper than any request needs (walking it, in the validator or in our own code, exhausted the stack)
 * or with more values than any request needs, and text PostgreSQL cannot store. PostgreSQL refuses a NUL in `text`
 * and `jsonb`, and the driver silently replaces an unpaired UTF-16 surrogate, so neither may reach a write: a refused
 * write is a 500 at best and, where the write was an audit record, an action missing from the trail.
 */
import { JsonTooDeepError, PayloadTooLargeError, unstorableText, type FieldProblem } from "./errors";

/** Deep enough for every request body the API defines (a few levels), with room for free-form event payloads. */
export const MAX_JSON_DEPTH = 32;
/** Values (strings, numbers, objects, ...) in one request's parameters: a 1 MB body of tiny values has ~250,000. */
export const MAX_JSON_VALUES = 20_000;

/** A NUL, a high surrogate without its low half, or a low surrogate without its high half. */
// eslint-disable-next-line no-control-regex -- the NUL is the point
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function pathOf(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

/**
 * The error the request's parameters deserve, or undefined when they are acceptable. Every string is checked, object
 * keys included (a key is stored too, in `jsonb`). Iterative, so no input can exhaust the stack here.
 */
export function clientInputProblem(params: unknown): Error | undefined {
  const unstorable: FieldProblem[] = [];
  const pending: { value: unknown; path: string; depth: number }[] = [{ value: params, path: "", depth: 0 }];
  let values = 0;
  while (pending.length > 0) {
    const { value, path, depth } = pending.pop()!;
    values += 1;
    if (values > MAX_JSON_VALUES) return new PayloadTooLargeError(`${MAX_JSON_VALUES} JSON values`);
    if (typeof value === "string") {
      if (UNSTORABLE.test(value)) {
        unstorable.push({
          field: path,
          type: "unstorableText",
          message: `'${path}' holds a NUL or unpaired surrogate`,
        });
      }
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (depth >= MAX_JSON_DEPTH) return new JsonTooDeepError(path, MAX_JSON_DEPTH);
    const entries: [string | number, unknown][] = Array.isArray(value) ? [...value.entries()] : Object.entries(value);
    for (const [key, child] of entries) {
      const childPath = pathOf(path, key);
      if (typeof key === "string" && UNSTORABLE.test(key)) {
        unstorable.push({
          field: childPath,
          type: "unstorableText",
          message: "A field name holds a NUL or unpaired surrogate",
        });
      }
      pending.push({ value: child, path: childPath, depth: depth + 1 });
    }
  }
  if (unstorable.length === 0) return undefined;
  return unstorableText(unstorable.sort((a, b) => a.field.localeCompare(b.field)));
}
