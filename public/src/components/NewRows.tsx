/**
 * "N new" over a list: while the list is shown, its total is asked for every few seconds; when it has grown, the
 * banner says by how much and shows them when asked, instead of moving the list under the reader's eyes.
 */
import { useEffect, useState } from "react";
import { api } from "../api/client";
import { Button } from "./ui";

const POLL_MS = 5000;

/** The same list query, asking for one row: only its total is wanted. */
function totalOnly(path: string): string {
  const url = new URL(path, "http://console");
  url.searchParams.set("page", "1");
  url.searchParams.set("pageSize", "1");
  return `${url.pathname}${url.search}`;
}

export function NewRows({ path, total, onShow }: { path: string; total: number; onShow(): void }) {
  const [latest, setLatest] = useState(total);
  useEffect(() => setLatest(total), [total]);
  useEffect(() => {
    const controller = new AbortController();
    const timer = setInterval(() => {
      api<{ total: number }>("GET", totalOnly(path), { signal: controller.signal }).then(
        (page) => setLatest(page.total),
        // A failed check shows nothing new; the next one tries again.
        () => undefined,
      );
    }, POLL_MS);
    return () => {
      clearInterval(timer);
      controller.abort();
    };
  }, [path]);
  const added = latest - total;
  if (added <= 0) return null;
  return (
    <div role="status" className="mb-2 flex items-center gap-3 rounded border border-blue-300 bg-blue-50 p-2 text-sm">
      {added} new
      <Button variant="secondary" onClick={onShow}>
        Show them
      </Button>
    </div>
  );
}
