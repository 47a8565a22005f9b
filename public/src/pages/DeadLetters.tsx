/**
 * Dead letters: their failure groups, the letters the filters select (each opening its own page), the replay
 * operations run lately, and a replay of everything the filters select as a server-side operation (a dry-run count,
 * then that count typed to confirm).
 */
import { useState } from "react";
import { Link } from "react-router";
import { useApi } from "../api/useApi";
import type { DeadLetter, ReplayOperation } from "../../../contracts/dead-letters";
import { useFilters } from "../components/useFilters";
import { Guarded } from "../components/States";
import { NewRows } from "../components/NewRows";
import { ReplayStarter } from "../components/ReplayStarter";
import { Badge, Button, Field, PageTitle, Pager, Section, Select, Table, formatTime } from "../components/ui";
import { useSession } from "../stores/session";
import { DeadLetterGroups } from "./DeadLetterGroups";
import type { Page } from "../../../lib/paging";

const FILTERS = ["status", "channel", "errorType", "search", "fingerprint", "page"];
/** The filters a replay operation takes (it always acts on pending letters). */
const SELECTION_FILTERS = ["channel", "errorType", "search", "fingerprint"];

export function DeadLettersPage() {
  const [params, changeFilter] = useFilters();
  const canReplay = useSession((state) => state.can("dlq:replay"));
  const query = new URLSearchParams({ status: "PENDING" });
  for (const key of FILTERS) {
    const value = params.get(key);
    if (value !== null) query.set(key, value);
  }
  if (query.get("status") === "") query.delete("status");
  const loaded = useApi<Page<DeadLetter>>(`/api/dlq?${query}`);
  // When this view was loaded: a replay of what it shows leaves alone the letters that failed after.
  const [loadedAt] = useState(() => new Date().toISOString());
  const selection: Record<string, string> = { until: loadedAt };
  for (const key of SELECTION_FILTERS) if (query.get(key)) selection[key] = query.get(key)!;

  return (
    <>
      <PageTitle>Dead letters</PageTitle>
      <DeadLetterGroups
        query={query}
        canReplay={canReplay}
        onShow={(fingerprint) => changeFilter("fingerprint", fingerprint)}
      />
      <Section title="Messages the consumers gave up on">
        <form className="mb-3 flex flex-wrap gap-3" onSubmit={(event) => event.preventDefault()} aria-label="Filters">
          <Select
            label="Status"
            value={params.get("status") ?? "PENDING"}
            onChange={(event) => changeFilter("status", event.target.value)}
            options={["PENDING", "REPLAYED", "RESOLVED", "DISCARDED", ""].map((value) => ({
              value,
              label: value || "Any",
            }))}
          />
          <Field
            label="Channel"
            value={params.get("channel") ?? ""}
            onChange={(e) => changeFilter("channel", e.target.value)}
          />
          <Field
            label="Error type"
            value={params.get("errorType") ?? ""}
            onChange={(e) => changeFilter("errorType", e.target.value)}
          />
          <Field
            label="Search message and error"
            value={params.get("search") ?? ""}
            onChange={(e) => changeFilter("search", e.target.value)}
          />
        </form>
        {params.get("fingerprint") && (
          <p className="mb-2 flex items-center gap-2 text-sm">
            Showing one failure group.
            <Button variant="secondary" onClick={() => changeFilter("fingerprint", "")}>
              Show all
            </Button>
          </p>
        )}
        <Guarded
          loaded={loaded}
          what="dead letters"
          empty={(page) => (page.total === 0 ? "No dead letters match. All clear." : null)}
        >
          {(page) => (
            <>
              <NewRows path={`/api/dlq?${query}`} shown={page} onShow={loaded.reload} />
              <p className="mb-2 text-sm">{page.total} dead letters match.</p>
              {canReplay && query.get("status") === "PENDING" && (
                <div className="mb-2">
                  <ReplayStarter selection={selection} label="Replay all that match…" />
                </div>
              )}
              <Table caption="Dead letters" head={["Failed", "Channel", "Group", "Error", "Status"]}>
                {page.rows.map((entry) => (
                  <tr key={entry.id}>
                    <td className="px-2 py-2 whitespace-nowrap">
                      {/* First, so it shows on a phone too, where the table scrolls sideways. */}
                      <Link
                        className="text-blue-800 underline"
                        to={`/operations/dead-letters/${entry.id}`}
                        aria-label={`Open dead letter ${entry.id}`}
                      >
                        {formatTime(entry.failedAt)}
                      </Link>
                    </td>
                    <td className="px-2 py-2 font-mono text-xs">{entry.channel}</td>
                    <td className="px-2 py-2">{entry.group}</td>
                    <td className="px-2 py-2">
                      <span className="font-mono text-xs">{entry.error.type}</span>{" "}
                      {entry.errorSummary || entry.error.message}
                    </td>
                    <td className="px-2 py-2">
                      <Badge value={entry.status} />
                      {entry.replayCount > 0 && <span className="ml-1 text-xs">replayed {entry.replayCount}×</span>}
                    </td>
                  </tr>
                ))}
              </Table>
              <Pager page={page.page} totalPages={page.totalPages} onPage={(n) => changeFilter("page", String(n))} />
            </>
          )}
        </Guarded>
      </Section>
      <ReplayOperations />
    </>
  );
}

/** The latest replay operations, each opening its page (progress, cancel, per-letter results). */
function ReplayOperations() {
  const loaded = useApi<Page<ReplayOperation>>("/api/dlq/replays?pageSize=10");
  return (
    <Section title="Replay operations">
      <Guarded loaded={loaded} what="replay operations" empty={(page) => (page.total === 0 ? "None yet." : null)}>
        {(page) => (
          <Table caption="Replay operations" head={["Started", "By", "Status", "Letters", "Outcomes"]}>
            {page.rows.map((op) => (
              <tr key={op.id}>
                <td className="px-2 py-2 whitespace-nowrap">
                  <Link className="text-blue-800 underline" to={`/operations/dead-letters/replays/${op.id}`}>
                    {formatTime(op.startedAt)}
                  </Link>
                </td>
                <td className="px-2 py-2 font-mono text-xs">{op.startedBy}</td>
                <td className="px-2 py-2">
                  <Badge value={op.status} />
                </td>
                <td className="px-2 py-2 text-sm">
                  {op.progress.sent} of {op.total} sent
                </td>
                <td className="px-2 py-2 text-sm">
                  {op.outcomes.resolved} resolved, {op.outcomes.failed} failed again, {op.outcomes.pending} pending
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Guarded>
    </Section>
  );
}
