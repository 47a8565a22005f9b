/**
 * The audit trail: search by actor, entity, action (by prefix) and time, session refreshes hidden unless asked for;
 * full ids, entities linked to their pages, a request id filtering to its records; a change shown field by field
 * (before → after); verify the hash chain and see where it breaks.
 */
import { Fragment, useState } from "react";
import { Link } from "react-router";
import { AuditChange, EntityId } from "../components/AuditChange";
import type { AuditRecord } from "../../../contracts/audit";
import { NewRows } from "../components/NewRows";
import { Who } from "../components/Who";
import { useNames } from "../api/names";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useApi } from "../api/useApi";
import { useFilters } from "../components/useFilters";
import { Guarded, Notice, InlineError } from "../components/States";
import { Button, Field, PageTitle, Pager, Section, Table, formatTime } from "../components/ui";
import type { Page } from "../../../lib/paging";

type Verdict =
  | { valid: true; checked: number }
  | { valid: false; checked: number; brokenAt: { seq: number | null; id: string | null; reason: string } };

const FILTERS = ["actorId", "entityType", "entityId", "namePrefix", "requestId", "from", "to", "page"];
/** Written by every reload of a signed-in page: hidden unless asked for, or they crowd out everything else. */
const REFRESH = "auth.refresh";

export function AuditPage() {
  const [params, setFilter] = useFilters();
  const query = new URLSearchParams();
  for (const key of FILTERS) {
    const value = params.get(key);
    if (value) query.set(key, key === "from" || key === "to" ? new Date(value).toISOString() : value);
  }
  const showRefreshes = params.get("refreshes") === "shown";
  if (!showRefreshes) query.set("excludeName", REFRESH);
  const loaded = useApi<Page<AuditRecord>>(`/api/audit?${query}`);
  const names = useNames(
    (loaded.data?.rows ?? []).map((record) => (record.actor.type === "user" ? record.actor.id : null)),
  );
  const [verdict, setVerdict] = useState<Verdict | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<number | null>(null);

  async function verify() {
    setVerifying(true);
    setError(null);
    try {
      setVerdict(await api<Verdict>("GET", "/api/audit/verify"));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setVerifying(false);
    }
  }

  return (
    <>
      <PageTitle
        actions={
          <Button onClick={() => void verify()} disabled={verifying}>
            {verifying ? "Verifying…" : "Verify the chain"}
          </Button>
        }
      >
        Audit trail
      </PageTitle>
      <div className="space-y-4">
        {verdict?.valid === true && (
          <Notice tone="success">The chain is intact: {verdict.checked} records checked.</Notice>
        )}
        {verdict?.valid === false && (
          <p role="alert" className="rounded border border-red-300 bg-red-50 p-3 text-sm text-red-800">
            {verdict.brokenAt.reason === "record missing"
              ? `Record ${verdict.brokenAt.id} is missing: the audit service gave up on it.`
              : verdict.brokenAt.reason === "records removed"
                ? `The records from ${verdict.brokenAt.seq} on were removed.`
                : `The chain is broken at record ${verdict.brokenAt.seq} (${verdict.brokenAt.id}): ${verdict.brokenAt.reason}.`}{" "}
            {verdict.checked} records before it are intact.
          </p>
        )}
        <InlineError message={error} />
        <Section title="Records">
          <form className="mb-3 flex flex-wrap gap-3" onSubmit={(event) => event.preventDefault()} aria-label="Filters">
            <Field
              label="Actor id"
              value={params.get("actorId") ?? ""}
              onChange={(e) => setFilter("actorId", e.target.value)}
            />
            <Field
              label="Entity type"
              value={params.get("entityType") ?? ""}
              onChange={(e) => setFilter("entityType", e.target.value)}
            />
            <Field
              label="Entity id"
              value={params.get("entityId") ?? ""}
              onChange={(e) => setFilter("entityId", e.target.value)}
            />
            <Field
              label="Action or event (its start)"
              placeholder="orders."
              value={params.get("namePrefix") ?? ""}
              onChange={(e) => setFilter("namePrefix", e.target.value)}
            />
            <Field
              label="From"
              type="date"
              value={params.get("from") ?? ""}
              onChange={(e) => setFilter("from", e.target.value)}
            />
            <Field
              label="Before"
              type="date"
              value={params.get("to") ?? ""}
              onChange={(e) => setFilter("to", e.target.value)}
            />
            <label className="flex items-center gap-2 self-end text-sm">
              <input
                type="checkbox"
                checked={showRefreshes}
                onChange={(event) => setFilter("refreshes", event.target.checked ? "shown" : "")}
              />
              Show session refreshes
            </label>
          </form>
          <Guarded
            loaded={loaded}
            what="audit records"
            empty={(page) => (page.total === 0 ? "No records match." : null)}
          >
            {(page) => (
              <>
                <NewRows path={`/api/audit?${query}`} shown={page} onShow={loaded.reload} />
                <Table caption="Audit records" head={["#", "When", "What", "Who", "Entity", "Request", ""]}>
                  {page.rows.map((record) => (
                    <Fragment key={record.seq}>
                      <tr>
                        <td className="px-2 py-2">
                          <Link
                            className="text-blue-800 underline"
                            to={`/operations/audit/${record.id}`}
                            aria-label={`Open audit record ${record.seq}`}
                          >
                            {record.seq}
                          </Link>
                        </td>
                        <td className="px-2 py-2 whitespace-nowrap">{formatTime(record.occurredAt)}</td>
                        <td className="px-2 py-2 font-mono text-xs">{record.name}</td>
                        <td className="px-2 py-2">
                          <Who
                            actor={record.actor.id ? `${record.actor.type}:${record.actor.id}` : record.actor.type}
                            names={names}
                          />
                        </td>
                        <td className="px-2 py-2">
                          {record.entity.type} <EntityId type={record.entity.type} id={record.entity.id} />
                        </td>
                        <td className="px-2 py-2">
                          {record.requestId && (
                            <Link
                              className="font-mono text-xs break-all text-blue-800 underline"
                              to={`?requestId=${encodeURIComponent(record.requestId)}`}
                              title="Every record of this request"
                            >
                              {record.requestId}
                            </Link>
                          )}
                        </td>
                        <td className="px-2 py-2">
                          <Button
                            variant="secondary"
                            aria-expanded={open === record.seq}
                            onClick={() => setOpen(open === record.seq ? null : record.seq)}
                          >
                            {open === record.seq ? "Hide" : "Change"}
                          </Button>
                        </td>
                      </tr>
                      {open === record.seq && (
                        <tr>
                          <td colSpan={7} className="bg-slate-50 px-2 py-2">
                            <AuditChange change={record.change} />
                          </td>
                        </tr>
                      )}
                    </Fragment>
                  ))}
                </Table>
                <Pager page={page.page} totalPages={page.totalPages} onPage={(n) => setFilter("page", String(n))} />
              </>
            )}
          </Guarded>
        </Section>
      </div>
    </>
  );
}
