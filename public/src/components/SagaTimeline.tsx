/**
 * A saga's timeline as operators read it: each step, outcome, attempt, duration and message, compensations and
 * failures marked, and repeated attempts (a wait retried) collapsed into one entry with their count. Shown on the
 * order's page and on the saga's.
 */
import type { SagaTimelineEntry } from "../../../contracts/sagas";
import { Badge, formatTime } from "./ui";

export function SagaTimeline({
  status,
  step,
  reason,
  timeline,
}: {
  status: string;
  step: string;
  reason: string | null;
  timeline: SagaTimelineEntry[];
}) {
  return (
    <>
      <p className="mb-2 text-sm">
        Saga <Badge value={status} /> at <span className="font-mono">{step}</span>
        {reason && <span className="text-slate-700"> — {reason}</span>}
      </p>
      <ol className="space-y-2" aria-label="Saga steps">
        {collapseRepeats(timeline).map(({ entry, times }, index) => {
          const compensation = entry.step.includes(":compensate");
          const failed = !["ok", "started", "resumed"].includes(entry.outcome);
          return (
            <li
              key={index}
              className={`rounded border-l-4 bg-slate-50 p-2 text-sm ${failed ? "border-red-500" : compensation ? "border-orange-500" : "border-green-600"}`}
            >
              <div className="flex flex-wrap gap-x-3">
                <span className="font-medium">{entry.step}</span>
                <span>{entry.outcome}</span>
                <span className="text-slate-600">
                  attempt {entry.attempt}
                  {times > 1 && ` (${times}× in a row, the last shown)`}
                </span>
                {entry.durationMs !== null && <span className="text-slate-600">{entry.durationMs} ms</span>}
                <time className="ml-auto text-slate-600" dateTime={entry.at}>
                  {formatTime(entry.at)}
                </time>
              </div>
              {entry.message && <p className={`mt-1 ${failed ? "text-red-800" : "text-slate-700"}`}>{entry.message}</p>}
            </li>
          );
        })}
      </ol>
    </>
  );
}

/** Entries that repeat the one before (same step, outcome and message: a wait retried) shown once, with a count. */
function collapseRepeats(timeline: SagaTimelineEntry[]): { entry: SagaTimelineEntry; times: number }[] {
  const collapsed: { entry: SagaTimelineEntry; times: number }[] = [];
  for (const entry of timeline) {
    const last = collapsed.at(-1);
    const same =
      last &&
      last.entry.step === entry.step &&
      last.entry.outcome === entry.outcome &&
      last.entry.message === entry.message;
    if (same) collapsed[collapsed.length - 1] = { entry, times: last.times + 1 };
    else collapsed.push({ entry, times: 1 });
  }
  return collapsed;
}
