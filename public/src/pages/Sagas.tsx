/**
 * Sagas: the order sagas by status (parked FAILED ones first to look at), stalled ones (no engine holds them), each
 * with its subject's page and its own; retry a parked saga, or compensate a running one (components/SagaMoves).
 */
import { useState } from "react";
import type { Saga } from "../../../contracts/sagas";
import { Link } from "react-router";
import { useApi } from "../api/useApi";
import { SagaMoves } from "../components/SagaMoves";
import { useFilters } from "../components/useFilters";
import { Guarded, Notice } from "../components/States";
import { Badge, PageTitle, Pager, Section, Select, Table, formatTime } from "../components/ui";
import type { Page } from "../../../lib/paging";

const STATUSES = ["RUNNING", "COMPENSATING", "COMPLETED", "COMPENSATED", "FAILED"];

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
        <Link className="text-blue-800 underline" to={`/operations/sagas/${saga.id}`} title="The saga's page">
          {saga.step} (attempt {saga.attempt})
        </Link>
      </td>
      <td className="px-2 py-2 text-sm">{saga.reason ?? ""}</td>
      <td className="px-2 py-2 text-xs whitespace-nowrap">{formatTime(saga.updatedAt)}</td>
      <td className="px-2 py-2">
        <SagaMoves saga={saga} onMoved={onMoved} />
      </td>
    </tr>
  );
}
