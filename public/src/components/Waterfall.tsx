/**
 * A trace as a waterfall: each span under the span that called it, with when it started (from the trace's first
 * span) and how long it took, drawn as a bar on the trace's time axis. Spans whose parent was not stored (another
 * node's, not sent yet) are shown as roots rather than dropped.
 */
import type { StoredSpan } from "../../../contracts/logs";
import { Table } from "./ui";

export interface WaterfallRow {
  span: StoredSpan;
  depth: number;
  /** From the trace's first span, and as a share of the whole trace (0–100). */
  offsetMs: number;
  offsetPercent: number;
  widthPercent: number;
}

/** The spans in call order (depth first, siblings by start), placed on the trace's time axis. */
export function waterfallRows(spans: StoredSpan[]): WaterfallRow[] {
  if (spans.length === 0) return [];
  const startOf = (span: StoredSpan) => Date.parse(span.startedAt);
  const ids = new Set(spans.map((span) => span.spanId));
  const children = new Map<string | null, StoredSpan[]>();
  for (const span of spans) {
    const parent = span.parentId !== null && ids.has(span.parentId) ? span.parentId : null;
    children.set(parent, [...(children.get(parent) ?? []), span]);
  }
  const start = Math.min(...spans.map(startOf));
  const end = Math.max(...spans.map((span) => startOf(span) + (span.durationMs ?? 0)));
  const total = Math.max(end - start, 1);
  const rows: WaterfallRow[] = [];
  const visit = (parent: string | null, depth: number) => {
    const siblings = [...(children.get(parent) ?? [])].sort((a, b) => startOf(a) - startOf(b));
    for (const span of siblings) {
      const offsetMs = startOf(span) - start;
      rows.push({
        span,
        depth,
        offsetMs,
        offsetPercent: (offsetMs / total) * 100,
        widthPercent: ((span.durationMs ?? 0) / total) * 100,
      });
      visit(span.spanId, depth + 1);
    }
  };
  visit(null, 0);
  return rows;
}

export function Waterfall({ spans }: { spans: StoredSpan[] }) {
  return (
    <Table caption="Spans, each under its caller" head={["Span", "Node", "Starts", "Duration", "Timeline"]}>
      {waterfallRows(spans).map(({ span, depth, offsetMs, offsetPercent, widthPercent }) => (
        <tr key={span.spanId} data-depth={depth}>
          <td className="px-2 py-1 font-mono text-xs whitespace-nowrap" style={{ paddingLeft: `${0.5 + depth}rem` }}>
            {depth > 0 && <span aria-hidden="true">└ </span>}
            {span.name}
            {span.error && <span className="block text-red-800">{span.error}</span>}
          </td>
          <td className="px-2 py-1 text-xs">{span.nodeId}</td>
          <td className="px-2 py-1 text-xs whitespace-nowrap">+{offsetMs.toFixed(0)} ms</td>
          <td className="px-2 py-1 text-xs whitespace-nowrap">
            {span.durationMs === null ? "—" : `${span.durationMs.toFixed(1)} ms`}
          </td>
          <td className="w-48 min-w-32 px-2 py-1" aria-hidden="true">
            <div className="relative h-3 overflow-hidden rounded bg-slate-100">
              <div
                className={`absolute h-3 rounded ${span.error ? "bg-red-700" : "bg-blue-700"}`}
                style={{ left: `${offsetPercent}%`, width: `max(2px, ${widthPercent}%)` }}
              />
            </div>
          </td>
        </tr>
      ))}
    </Table>
  );
}
