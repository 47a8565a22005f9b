/**
 * Keyboard shortcuts on every signed-in page: `/` to the page's first filter or search field, `j` and `k` to the
 * next and previous row of the page's first table, `?` for this list. Keys typed into a field are left alone.
 */
import { useEffect, useState } from "react";
import { Button } from "./ui";

export const SHORTCUTS: [string, string][] = [
  ["/", "Go to the page's search or first filter"],
  ["j", "Next row of the list"],
  ["k", "Previous row of the list"],
  ["?", "Show or hide these shortcuts"],
];

function typing(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  return !!element && (element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName));
}

/** Focuses the first link or button of the row `step` rows from the focused one (or the first row). */
function moveRow(main: HTMLElement, step: 1 | -1): void {
  const rows = [...main.querySelectorAll<HTMLTableRowElement>("table tbody tr")].filter((row) =>
    row.querySelector("a, button"),
  );
  if (rows.length === 0) return;
  const current = rows.findIndex((row) => row.contains(document.activeElement));
  const next = current === -1 ? 0 : Math.min(Math.max(current + step, 0), rows.length - 1);
  rows[next].querySelector<HTMLElement>("a, button")!.focus();
}

export function Shortcuts() {
  const [helpOpen, setHelpOpen] = useState(false);
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      const main = document.getElementById("main");
      if (!main) return;
      if (event.key === "/") {
        const field = main.querySelector<HTMLElement>("form input, form select");
        if (field) {
          event.preventDefault();
          field.focus();
        }
      } else if (event.key === "j" || event.key === "k") {
        moveRow(main, event.key === "j" ? 1 : -1);
      } else if (event.key === "?") {
        setHelpOpen((open) => !open);
      } else if (event.key === "Escape") {
        setHelpOpen(false);
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
  if (!helpOpen) return null;
  return (
    <div
      role="dialog"
      aria-label="Keyboard shortcuts"
      className="fixed top-16 right-4 z-10 rounded-lg border border-slate-300 bg-white p-4 shadow-lg"
    >
      <h2 className="mb-2 font-semibold">Keyboard shortcuts</h2>
      <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
        {SHORTCUTS.map(([key, what]) => (
          <div key={key} className="contents">
            <dt>
              <kbd className="rounded border border-slate-400 px-1 font-mono">{key}</kbd>
            </dt>
            <dd>{what}</dd>
          </div>
        ))}
      </dl>
      <Button variant="secondary" className="mt-3" onClick={() => setHelpOpen(false)}>
        Close
      </Button>
    </div>
  );
}
