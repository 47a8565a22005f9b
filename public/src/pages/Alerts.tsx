/**
 * Alerts: the incidents the alert rules opened, open ones first to look at; each with its rule, what fired, who has
 * acknowledged it, and the notices sent about it (email, webhook; sent, waiting or failed). Acknowledging goes
 * through the API, which keeps who and when and records it in the audit trail.
 */
import { Fragment, useState } from "react";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useApi } from "../api/useApi";
import { useFilters } from "../components/useFilters";
import { NewRows } from "../components/NewRows";
import { Who } from "../components/Who";
import { useNames, userIdOf } from "../api/names";
import { Guarded, InlineError } from "../components/States";
import { Badge, Button, PageTitle, Pager, Section, Select, Table, formatTime } from "../components/ui";
import { useSession } from "../stores/session";
import type { Page } from "../../../lib/paging";
import type { Incident, Notice } from "../../../contracts/alerts";

export function AlertsPage() {
  const [params, changeFilter] = useFilters();
  const status = params.get("status") ?? "FIRING";
  const query = new URLSearchParams({ page: params.get("page") ?? "1" });
  if (status) query.set("status", status);
  const loaded = useApi<Page<Incident>>(`/api/alerts?${query}`);
  const [open, setOpen] = useState<string | null>(null);
  const names = useNames((loaded.data?.rows ?? []).map((incident) => userIdOf(incident.acknowledgedBy)));

  return (
    <>
      <PageTitle>Alerts</PageTitle>
      <Section title="Incidents">
        <form className="mb-3 flex flex-wrap gap-3" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
          <Select
            label="Status"
            value={status}
            onChange={(event) => changeFilter("status", event.target.value)}
            options={[
              { value: "FIRING", label: "Open" },
              { value: "RESOLVED", label: "Resolved" },
              { value: "", label: "Any" },
            ]}
          />
        </form>
        <Guarded loaded={loaded} what="incidents" empty={(page) => (page.total === 0 ? "No incidents." : null)}>
          {(page) => (
            <>
              <NewRows path={`/api/alerts?${query}`} shown={page} onShow={loaded.reload} />
              <Table caption="Incidents" head={["Opened", "Rule", "What", "Status", ""]}>
                {page.rows.map((incident) => (
                  <Fragment key={incident.id}>
                    <IncidentRow
                      incident={incident}
                      names={names}
                      open={open === incident.id}
                      onToggle={() => setOpen(open === incident.id ? null : incident.id)}
                      onChanged={loaded.reload}
                    />
                    {open === incident.id && (
                      <tr>
                        <td colSpan={5} className="bg-slate-50 px-2 py-2">
                          <Notices id={incident.id} />
                        </td>
                      </tr>
                    )}
                  </Fragment>
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

function IncidentRow(props: {
  incident: Incident;
  names: Record<string, string>;
  open: boolean;
  onToggle(): void;
  onChanged(): void;
}) {
  const { incident } = props;
  const can = useSession((state) => state.can);
  const [error, setError] = useState<string | null>(null);

  async function acknowledge() {
    setError(null);
    try {
      await api("POST", `/api/alerts/${incident.id}/acknowledge`);
      props.onChanged();
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <tr className="align-top">
      <td className="px-2 py-2 text-xs whitespace-nowrap">{formatTime(incident.openedAt)}</td>
      <td className="px-2 py-2 font-mono text-xs">
        {incident.rule}
        <br />
        {incident.key}
      </td>
      <td className="px-2 py-2 text-sm">{incident.summary}</td>
      <td className="px-2 py-2 text-sm">
        <Badge value={incident.status} />
        {incident.acknowledgedBy && (
          <p className="mt-1 text-xs">
            acknowledged by <Who actor={incident.acknowledgedBy} names={props.names} />,{" "}
            {formatTime(incident.acknowledgedAt)}
          </p>
        )}
        {incident.resolvedAt && <p className="mt-1 text-xs">resolved {formatTime(incident.resolvedAt)}</p>}
      </td>
      <td className="px-2 py-2">
        <div className="flex flex-wrap gap-2">
          {incident.status === "FIRING" && !incident.acknowledgedBy && can("alerts:acknowledge") && (
            <Button onClick={() => void acknowledge()}>Acknowledge</Button>
          )}
          <Button variant="secondary" aria-expanded={props.open} onClick={props.onToggle}>
            {props.open ? "Hide notices" : "Notices"}
          </Button>
        </div>
        <InlineError message={error} />
      </td>
    </tr>
  );
}

function Notices({ id }: { id: string }) {
  const loaded = useApi<{ notices: Notice[] }>(`/api/alerts/${id}`);
  return (
    <Guarded
      loaded={loaded}
      what="notices"
      empty={(incident) => (incident.notices.length === 0 ? "No notices: no channel is configured." : null)}
    >
      {(incident) => (
        <Table caption="Notices sent" head={["Notice", "Channel", "Status", "Tries", "Sent", "Last error"]}>
          {incident.notices.map((notice) => (
            <tr key={`${notice.kind}-${notice.channel}`}>
              <td className="px-2 py-1">{notice.kind}</td>
              <td className="px-2 py-1">{notice.channel}</td>
              <td className="px-2 py-1">
                <Badge value={notice.status} />
              </td>
              <td className="px-2 py-1">{notice.attempts}</td>
              <td className="px-2 py-1 text-xs">{formatTime(notice.sentAt)}</td>
              <td className="px-2 py-1 text-xs">{notice.lastError ?? ""}</td>
            </tr>
          ))}
        </Table>
      )}
    </Guarded>
  );
}
