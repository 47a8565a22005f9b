/**
 * Sagas: the order sagas by status (parked FAILED ones first to look at), stalled ones (no engine holds them), each
 * with its subject's page; retry a parked saga, or compensate a running one that waits on a participant that never
 * answers. Both ask for a confirmation and go through the API, which records them in the audit trail.
 */
import { useState } from "react";
import { Link } from "react-router";
import { api, describeError } from "../api/client";
import { useApi } from "../api/useApi";
import { useFilters } from "../components/useFilters";
import { Guarded, InlineError, Notice } from "../components/States";
import { Badge, Button, PageTitle, Pager, Section, Select, Table, formatTime } from "../components/ui";
import { useSession } from "../stores/session";
import type { Page } from "../../../lib/paging";

interface Saga {
  id: string;
  definition: string;
  subjectId: string;
  status: string;
  step: string;
  attempt: number;
  reason: string | null;
  updatedAt: string;
  stalled: boolean;
}

const STATUSES = ["RUNNING", "COMPENSATING", "COMPLETED", "COMPENSATED", "FAILED"];

/** What an operator may do to a saga in its state, and what it does. */
const MOVES: Record<string, { label: string; path: string; permission: string; explains: string }> = {
  FAILED: {
    label: "Retry",
    path: "retry",
    permission: "sagas:retry",
    explains: "Runs the action it stopped at again, from its first attempt.",
  },
  RUNNING: {
    label: "Compensate",
    path: "compensate",
    permission: "sagas:compensate",
    explains: "Gives up on it: the steps it has done are undone (stock released, payment refunded).",
  },
};

export function SagasPage() {
  const [params, changeFilter] = useFilters();
  const query = new URLSearchParams({ status: params.get("status") ?? "FAILED", page: params.get("page") ?? "1" });
  if (query.get("status") === "") query.delete("status");
  if (params.get("stalled") === "true") query.set("stalled", "true");
  const loaded = useApi<Page<Saga>>(`/api/sagas?${query}`);
  const [message, setMessage] = useState<string | null>(null);

  return (
    <>
      <PageTitle>Sagas</PageTitle>
      <Section title="Sagas by status">
        <form className="mb-3 flex flex-wrap items-end gap-3" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
          <Select
            label="Status"
            value={params.get("status") ?? "FAILED"}
            onChange={(event) => changeFilter("status", event.target.value)}
            options={[...STATUSES, ""].map((value) => ({ value, label: value || "Any" }))}
          />
          <label className="flex items-center gap-2 text-sm">
            <input
              type="checkbox"
              checked={params.get("stalled") === "true"}
              onChange={(event) => changeFilter("stalled", event.target.checked ? "true" : "")}
            />
            Only stalled (no engine holds them)
          </label>
        </form>
        {message && <Notice tone="success">{message}</Notice>}
        <Guarded loaded={loaded} what="sagas" empty={(page) => (page.total === 0 ? "No saga matches." : null)}>
          {(page) => (
            <>
              <p className="mb-2 text-sm">{page.total} sagas match.</p>
              <Table caption="Sagas" head={["Order", "Status", "Step", "Why", "Changed", ""]}>
                {page.rows.map((saga) => (
                  <SagaRow
                    key={saga.id}
                    saga={saga}
                    onMoved={(text) => {
                      setMessage(text);
                      loaded.reload();
                    }}
                  />
                ))}
              </Table>
              <Pager page={page.page} totalPages={page.totalPages} onPage={(n) => changeFilter("page", String(n))} />
            </>
          )}
        </Guarded>
      </Section>
    </>
  );
}

function SagaRow({ saga, onMoved }: { saga: Saga; onMoved(message: string): void }) {
  const can = useSession((state) => state.can);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const move = MOVES[saga.status];

  async function confirm() {
    setError(null);
    try {
      await api("POST", `/api/sagas/${saga.id}/${move.path}`);
      setConfirming(false);
      onMoved(`${move.label}: saga of order ${saga.subjectId} done.`);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <tr className="align-top">
      <td className="px-2 py-2">
        <Link className="font-mono text-xs text-blue-800 underline" to={`/orders/${saga.subjectId}`}>
          {saga.subjectId}
        </Link>
      </td>
      <td className="px-2 py-2">
        <Badge value={saga.status} />
        {saga.stalled && <span className="ml-1 text-xs">stalled</span>}
      </td>
      <td className="px-2 py-2 font-mono text-xs">
        {saga.step} (attempt {saga.attempt})
      </td>
      <td className="px-2 py-2 text-sm">{saga.reason ?? ""}</td>
      <td className="px-2 py-2 text-xs whitespace-nowrap">{formatTime(saga.updatedAt)}</td>
      <td className="px-2 py-2">
        {move && can(move.permission) && !confirming && (
          <Button variant={move.path === "compensate" ? "danger" : "primary"} onClick={() => setConfirming(true)}>
            {move.label}…
          </Button>
        )}
        {confirming && (
          <div role="group" aria-label={`${move.label} the saga of order ${saga.subjectId}`} className="space-y-2">
            <p className="text-sm">{move.explains}</p>
            <div className="flex gap-2">
              <Button variant={move.path === "compensate" ? "danger" : "primary"} onClick={() => void confirm()}>
                {move.label} now
              </Button>
              <Button variant="secondary" onClick={() => setConfirming(false)}>
                Cancel
              </Button>
            </div>
          </div>
        )}
        <InlineError message={error} />
      </td>
    </tr>
  );
}
