/**
 * One audit record: what was done, by whom, to which entity (linked), in which request (its other records and its
 * log lines), the change field by field, and its place in the hash chain. Each id on the page is whole and a link
 * where the console has a page for it.
 */
import { Link, useParams } from "react-router";
import { useNames } from "../api/names";
import { useApi } from "../api/useApi";
import { AuditChange, EntityId } from "../components/AuditChange";
import type { AuditRecord } from "../../../contracts/audit";
import { Guarded } from "../components/States";
import { Who } from "../components/Who";
import { PageTitle, Section, formatTime } from "../components/ui";
import { useSession } from "../stores/session";

export function AuditRecordPage() {
  const { id = "" } = useParams();
  const can = useSession((state) => state.can);
  const loaded = useApi<AuditRecord>(`/api/audit/${encodeURIComponent(id)}`);
  const actor = loaded.data?.actor;
  const names = useNames([actor?.type === "user" ? actor.id : null]);

  return (
    <>
      <PageTitle>Audit record</PageTitle>
      <Guarded loaded={loaded} what="the audit record">
        {(record) => {
          const byActor = record.actor.id ? `actorId=${encodeURIComponent(record.actor.id)}` : null;
          const byEntity =
            record.entity.type && record.entity.id
              ? `entityType=${encodeURIComponent(record.entity.type)}&entityId=${encodeURIComponent(record.entity.id)}`
              : null;
          return (
            <div className="space-y-4">
              <Section title={`#${record.seq} ${record.name}`}>
                <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
                  <dt className="text-slate-600">Id</dt>
                  <dd className="font-mono text-xs break-all">{record.id}</dd>
                  <dt className="text-slate-600">Kind</dt>
                  <dd>{record.kind === "action" ? "an action called" : "a domain event"}</dd>
                  <dt className="text-slate-600">When</dt>
                  <dd>
                    {formatTime(record.occurredAt)} (recorded {formatTime(record.recordedAt)})
                  </dd>
                  <dt className="text-slate-600">Who</dt>
                  <dd>
                    <Who
                      actor={record.actor.id ? `${record.actor.type}:${record.actor.id}` : record.actor.type}
                      names={names}
                    />
                    {byActor && (
                      <>
                        {" · "}
                        <Link className="text-blue-800 underline" to={`/operations/audit?${byActor}`}>
                          their records
                        </Link>
                      </>
                    )}
                  </dd>
                  <dt className="text-slate-600">Entity</dt>
                  <dd>
                    {record.entity.type ?? "none"} <EntityId type={record.entity.type} id={record.entity.id} />
                    {byEntity && (
                      <>
                        {" · "}
                        <Link className="text-blue-800 underline" to={`/operations/audit?${byEntity}`}>
                          its records
                        </Link>
                      </>
                    )}
                  </dd>
                  <dt className="text-slate-600">Request</dt>
                  <dd>
                    {record.requestId ? (
                      <>
                        <Link
                          className="font-mono text-xs break-all text-blue-800 underline"
                          to={`/operations/audit?requestId=${encodeURIComponent(record.requestId)}`}
                          title="Every record of this request"
                        >
                          {record.requestId}
                        </Link>
                        {can("logs:read") && (
                          <>
                            {" · "}
                            <Link
                              className="text-blue-800 underline"
                              to={`/operations/logs?requestId=${encodeURIComponent(record.requestId)}`}
                            >
                              its log lines
                            </Link>
                          </>
                        )}
                      </>
                    ) : (
                      "none"
                    )}
                  </dd>
                  <dt className="text-slate-600">Node</dt>
                  <dd className="font-mono text-xs">{record.nodeId ?? "—"}</dd>
                  <dt className="text-slate-600">Hash</dt>
                  <dd className="font-mono text-xs break-all">{record.hash}</dd>
                  <dt className="text-slate-600">Previous hash</dt>
                  <dd className="font-mono text-xs break-all">{record.prevHash}</dd>
                </dl>
              </Section>
              <Section title="Change">
                <AuditChange change={record.change} />
              </Section>
            </div>
          );
        }}
      </Guarded>
    </>
  );
}
