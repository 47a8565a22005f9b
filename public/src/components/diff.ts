/** What changed between two versions of an entity, field by field (nested fields by their dotted path). */
export interface FieldChange {
  path: string;
  before: unknown;
  after: unknown;
}

function flatten(value: unknown, path: string, into: Map<string, unknown>): Map<string, unknown> {
  if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [key, child] of Object.entries(value)) flatten(child, path ? `${path}.${key}` : key, into);
  } else {
    into.set(path, value);
  }
  return into;
}

/** The fields whose values differ (an array compared whole), in the order they first appear. */
export function diffOf(before: unknown, after: unknown): FieldChange[] {
  const old = flatten(before, "", new Map());
  const next = flatten(after, "", new Map());
  const paths = [...new Set([...old.keys(), ...next.keys()])];
  return paths
    .filter((path) => JSON.stringify(old.get(path)) !== JSON.stringify(next.get(path)))
    .map((path) => ({ path, before: old.get(path), after: next.get(path) }));
}
