/**
 * "N new" over a list's first page: while it is shown, the page is asked for again every few seconds, and the rows
 * above the first row already shown are counted. The banner says how many and shows them when asked, instead of
 * moving the list under the reader's eyes. Counting rows rather than comparing totals stays exact when rows also
 * leave the list meanwhile (a dead letter resolved as another arrives). Later pages have no banner: new rows arrive
 * on the first.
 */
import { useEffect, useState } from "react";
import { api } from "../api/client";
import { Button } from "./ui";

const POLL_MS = 5000;
/** How many of the newest rows are compared; more new than that is "50+ new". */
const PEEK = 50;

/** The same list query's first page, PEEK rows long. */
function firstPage(path: string): string {
  const url = new URL(path, "http://console");
  url.searchParams.set("page", "1");
  url.searchParams.set("pageSize", String(PEEK));
  return `${url.pathname}${url.search}`;
}

/**
 * What the banner says, given the list's first rows now and the ids shown: how many rows come before the first one
 * shown; `PEEK+` when more do; "changed" when none of the rows shown is among them any more; nothing otherwise.
 */
export function newRowsLabel(latestIds: string[], shownIds: string[]): string | null {
  const shown = new Set(shownIds);
  const firstShown = latestIds.findIndex((id) => shown.has(id));
  if (firstShown > 0) return `${firstShown} new`;
  if (firstShown === 0) return null;
  if (latestIds.length === 0) return null;
  if (shownIds.length === 0 || latestIds.length === PEEK) return `${PEEK}+ new`;
  return "The list has changed";
}

export function NewRows({
  path,
  shown,
  onShow,
}: {
  path: string;
  shown: { page: number; rows: { id: string }[] };
  onShow(): void;
}) {
  const shownIds = shown.rows.map((row) => row.id);
  const key = shownIds.join(",");
  const [label, setLabel] = useState<string | null>(null);
  useEffect(() => {
    setLabel(null);
    if (shown.page !== 1) return;
    const controller = new AbortController();
    const timer = setInterval(() => {
      api<{ rows: { id: string }[] }>("GET", firstPage(path), { signal: controller.signal }).then(
        (latest) =>
          setLabel(
            newRowsLabel(
              latest.rows.map((row) => row.id),
              key ? key.split(",") : [],
            ),
          ),
        // A failed check shows nothing new; the next one tries again.
        () => undefined,
      );
    }, POLL_MS);
    return () => {
      clearInterval(timer);
      controller.abort();
    };
  }, [path, key, shown.page]);
  if (!label) return null;
  return (
    <div role="status" className="mb-2 flex items-center gap-3 rounded border border-blue-300 bg-blue-50 p-2 text-sm">
      {label}
      <Button variant="secondary" onClick={onShow}>
        Show them
      </Button>
    </div>
  );
}
