/**
 * Dead letters: filter them, inspect a message with its error history, replay one or a selection (with progress),
 * discard with a reason. Every replay and discard goes through the API, which records it in the audit trail.
 */
import { useState } from "react";
import { api, describeError } from "../api/client";
import { useApi } from "../api/useApi";
import { useFilters } from "../components/useFilters";
import { Guarded, Notice, InlineError } from "../components/States";
import { Badge, Button, Field, PageTitle, Pager, Section, Select, Table, formatTime } from "../components/ui";
import { useSession } from "../stores/session";
import { DeadLetterGroups } from "./DeadLetterGroups";
import type { Page } from "../../../lib/paging";

interface DeadLetter {
  id: string;
  channel: string;
  group: string;
  message: unknown;
  replayable: boolean;
  status: string;
  attempts: number;
  error: { name: string; message: string; type: string; code: number };
  failures: { failedAt: string; attempts: number; error: { type: string; message: string } }[];
  replayCount: number;
  discardedBy: string | null;
  discardReason: string | null;
  failedAt: string;
}

const FILTERS = ["status", "channel", "errorType", "search", "fingerprint", "page"];

export function DeadLettersPage() {
  const [params, changeFilter] = useFilters();
  const canReplay = useSession((state) => state.can("dlq:replay"));
  const canDiscard = useSession((state) => state.can("dlq:discard"));
  const query = new URLSearchParams({ status: "PENDING" });
  for (const key of FILTERS) {
    const value = params.get(key);
    if (value !== null) query.set(key, value);
  }
  if (query.get("status") === "") query.delete("status");
  const loaded = useApi<Page<DeadLetter>>(`/api/dlq?${query}`);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [open, setOpen] = useState<string | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number; failed: string[] } | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  const setFilter = (key: string, value: string) => {
    changeFilter(key, value);
    setSelected(new Set());
  };

  async function replay(ids: string[]) {
    setProgress({ done: 0, total: ids.length, failed: [] });
    setMessage(null);
    const failed: string[] = [];
    for (const [index, id] of ids.entries()) {
      try {
        await api("POST", `/api/dlq/${id}/replay`);
      } catch (err) {
        failed.push(`${id.slice(0, 8)}: ${describeError(err)}`);
      }
      setProgress({ done: index + 1, total: ids.length, failed: [...failed] });
    }
    setMessage(
      `Replayed ${ids.length - failed.length} of ${ids.length}.${failed.length ? ` Failed: ${failed.join("; ")}` : ""}`,
    );
    setProgress(null);
    setSelected(new Set());
    loaded.reload();
  }

  return (
    <>
      <PageTitle>Dead letters</PageTitle>
      <DeadLetterGroups
        query={query}
        canReplay={canReplay}
        onShow={(fingerprint) => setFilter("fingerprint", fingerprint)}
        onReplayed={(text) => {
          setMessage(text);
          loaded.reload();
        }}
      />
      <Section title="Messages the consumers gave up on">
        <form className="mb-3 flex flex-wrap gap-3" onSubmit={(event) => event.preventDefault()} aria-label="Filters">
          <Select
            label="Status"
            value={params.get("status") ?? "PENDING"}
            onChange={(event) => setFilter("status", event.target.value)}
            options={["PENDING", "REPLAYED", "RESOLVED", "DISCARDED", ""].map((value) => ({
              value,
              label: value || "Any",
            }))}
          />
          <Field
            label="Channel"
            value={params.get("channel") ?? ""}
            onChange={(e) => setFilter("channel", e.target.value)}
          />
          <Field
            label="Error type"
            value={params.get("errorType") ?? ""}
            onChange={(e) => setFilter("errorType", e.target.value)}
          />
          <Field
            label="Search message and error"
            value={params.get("search") ?? ""}
            onChange={(e) => setFilter("search", e.target.value)}
          />
        </form>
        {params.get("fingerprint") && (
          <p className="mb-2 flex items-center gap-2 text-sm">
            Showing one failure group.
            <Button variant="secondary" onClick={() => setFilter("fingerprint", "")}>
              Show all
            </Button>
          </p>
        )}
        {message && <Notice tone="success">{message}</Notice>}
        {progress && (
          <div className="my-2" role="status" aria-live="polite">
            <progress className="w-full" max={progress.total} value={progress.done} aria-label="Replay progress" />
            <p className="text-sm">
              Replaying {progress.done} of {progress.total}…
            </p>
          </div>
        )}
        <Guarded
          loaded={loaded}
          what="dead letters"
          empty={(page) => (page.total === 0 ? "No dead letters match. All clear." : null)}
        >
          {(page) => (
            <>
              {canReplay && (
                <div className="mb-2 flex gap-2">
                  <Button
                    disabled={selected.size === 0 || progress !== null}
                    onClick={() => void replay([...selected])}
                  >
                    Replay selected ({selected.size})
                  </Button>
                </div>
              )}
              <Table caption="Dead letters" head={["", "Failed", "Channel", "Group", "Error", "Status", ""]}>
                {page.rows.map((entry) => (
                  <DeadLetterRow
                    key={entry.id}
                    entry={entry}
                    selectable={
                      canReplay && entry.replayable && entry.status !== "DISCARDED" && entry.status !== "RESOLVED"
                    }
                    selected={selected.has(entry.id)}
                    onSelect={(on) => {
                      const next = new Set(selected);
                      if (on) next.add(entry.id);
                      else next.delete(entry.id);
                      setSelected(next);
                    }}
                    open={open === entry.id}
                    onToggle={() => setOpen(open === entry.id ? null : entry.id)}
                    canReplay={canReplay}
                    canDiscard={canDiscard}
                    onReplay={() => void replay([entry.id])}
                    onChanged={(text) => {
                      setMessage(text);
                      loaded.reload();
                    }}
                  />
                ))}
              </Table>
              <Pager page={page.page} totalPages={page.totalPages} onPage={(n) => setFilter("page", String(n))} />
            </>
          )}
        </Guarded>
      </Section>
    </>
  );
}

function DeadLetterRow(props: {
  entry: DeadLetter;
  selectable: boolean;
  selected: boolean;
  onSelect(on: boolean): void;
  open: boolean;
  onToggle(): void;
  canReplay: boolean;
  canDiscard: boolean;
  onReplay(): void;
  onChanged(message: string): void;
}) {
  const { entry } = props;
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | null>(null);
  const active = entry.status !== "DISCARDED" && entry.status !== "RESOLVED";

  async function discard() {
    try {
      await api("DELETE", `/api/dlq/${entry.id}`, { body: { reason } });
      props.onChanged(`Discarded ${entry.id.slice(0, 8)}.`);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <>
      <tr>
        <td className="px-2 py-2">
          {props.selectable && (
            <input
              type="checkbox"
              aria-label={`Select ${entry.id}`}
              checked={props.selected}
              onChange={(event) => props.onSelect(event.target.checked)}
            />
          )}
        </td>
        <td className="px-2 py-2 whitespace-nowrap">{formatTime(entry.failedAt)}</td>
        <td className="px-2 py-2 font-mono text-xs">{entry.channel}</td>
        <td className="px-2 py-2">{entry.group}</td>
        <td className="px-2 py-2">
          <span className="font-mono text-xs">{entry.error.type}</span> {entry.error.message}
        </td>
        <td className="px-2 py-2">
          <Badge value={entry.status} />
        </td>
        <td className="px-2 py-2">
          <Button variant="secondary" aria-expanded={props.open} onClick={props.onToggle}>
            {props.open ? "Hide" : "Inspect"}
          </Button>
        </td>
      </tr>
      {props.open && (
        <tr>
          <td colSpan={7} className="bg-slate-50 px-2 py-3">
            <div className="grid grid-cols-1 gap-3 lg:grid-cols-2">
              <div>
                <h3 className="text-sm font-medium">Message</h3>
                <pre className="max-h-64 overflow-auto rounded bg-white p-2 text-xs">
                  {JSON.stringify(entry.message, null, 2)}
                </pre>
              </div>
              <div>
                <h3 className="text-sm font-medium">
                  Error history ({entry.attempts} attempts, replayed {entry.replayCount}×)
                </h3>
                <ol className="list-decimal pl-5 text-sm">
                  {entry.failures.map((failure, index) => (
                    <li key={index}>
                      {formatTime(failure.failedAt)}: {failure.error.type} {failure.error.message}
                    </li>
                  ))}
                </ol>
                {entry.discardedBy && (
                  <p className="mt-2 text-sm">
                    Discarded by {entry.discardedBy}
                    {entry.discardReason ? `: ${entry.discardReason}` : ""}
                  </p>
                )}
                {active && (
                  <div className="mt-3 flex flex-wrap items-end gap-2">
                    {props.canReplay && entry.replayable && <Button onClick={props.onReplay}>Replay</Button>}
                    {props.canDiscard && (
                      <>
                        <Field
                          label="Reason to discard"
                          value={reason}
                          onChange={(event) => setReason(event.target.value)}
                        />
                        <Button variant="danger" disabled={!reason.trim()} onClick={() => void discard()}>
                          Discard
                        </Button>
                      </>
                    )}
                  </div>
                )}
                <InlineError message={error} className="mt-2" />
              </div>
            </div>
          </td>
        </tr>
      )}
    </>
  );
}
