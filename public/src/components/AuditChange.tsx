/**
 * An audit record as the console shows it, on the trail's list and on the record's own page: the entity it names,
 * linked to that entity's page where the console has one, and its change field by field (before → after).
 */
import { Link } from "react-router";
import { diffOf } from "./diff";
import { Table } from "./ui";

/** An entity's page in the console, where it has one. */
const ENTITY_PAGES: Record<string, (id: string) => string> = {
  order: (id) => `/orders/${id}`,
  saga: (id) => `/operations/sagas/${id}`,
  deadLetter: (id) => `/operations/dead-letters/${id}`,
  replayOperation: (id) => `/operations/dead-letters/replays/${id}`,
};

export function EntityId({ type, id }: { type: string | null; id: string | null }) {
  if (!id) return null;
  const page = type ? ENTITY_PAGES[type] : undefined;
  if (!page) return <span className="font-mono text-xs break-all">{id}</span>;
  return (
    <Link className="font-mono text-xs break-all text-blue-800 underline" to={page(id)}>
      {id}
    </Link>
  );
}

/** A change with the entity before and after: the fields that changed; otherwise what was asked and answered. */
export function AuditChange({ change }: { change: unknown }) {
  const { before, after } = (change ?? {}) as { before?: unknown; after?: unknown };
  if (before !== undefined && after !== undefined) {
    const fields = diffOf(before, after);
    return (
      <Table caption="What changed" head={["Field", "Before", "After"]}>
        {fields.map((field) => (
          <tr key={field.path}>
            <td className="px-2 py-1 font-mono text-xs">{field.path}</td>
            <td className="px-2 py-1 font-mono text-xs break-all text-red-800">{JSON.stringify(field.before)}</td>
            <td className="px-2 py-1 font-mono text-xs break-all text-green-800">{JSON.stringify(field.after)}</td>
          </tr>
        ))}
      </Table>
    );
  }
  return (
    <pre className="max-h-64 overflow-auto text-xs" tabIndex={0} aria-label="The record's change">
      {JSON.stringify(change, null, 2)}
    </pre>
  );
}
