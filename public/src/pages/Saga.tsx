/**
 * One saga: its order, where it is (step, attempt, what it waits for and until when), which engine runs it and how
 * long its lease holds, the context it carries, its whole timeline, and the operator's moves for its state (retry a
 * parked one, compensate a running one). Asked again every 2 s while it moves, so a retry is seen taking effect.
 */
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { useApi } from "../api/useApi";
import { SagaMoves } from "../components/SagaMoves";
import { SagaTimeline } from "../components/SagaTimeline";
import type { Saga } from "../../../contracts/sagas";
import { Guarded, Notice } from "../components/States";
import { Badge, PageTitle, Section, formatTime } from "../components/ui";

const MOVING = new Set(["RUNNING", "COMPENSATING"]);
const POLL_MS = 2000;

export function SagaPage() {
  const { id = "" } = useParams();
  const saga = useApi<Saga>(`/api/sagas/${encodeURIComponent(id)}`);
  const [message, setMessage] = useState<string | null>(null);
  const moving = saga.data ? MOVING.has(saga.data.status) : false;
  const { reload } = saga;
  useEffect(() => {
    if (!moving) return;
    const timer = setInterval(reload, POLL_MS);
    return () => clearInterval(timer);
  }, [moving, reload]);

  return (
    <>
      <PageTitle>Saga</PageTitle>
      <Guarded loaded={saga} what="the saga">
        {(found) => (
          <div className="space-y-4">
            {message && <Notice tone="success">{message}</Notice>}
            <Section title="Where it is">
              <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
                <dt className="text-slate-600">Id</dt>
                <dd className="font-mono text-xs break-all">{found.id}</dd>
                <dt className="text-slate-600">Status</dt>
                <dd>
                  <Badge value={found.status} />
                  {found.stalled && <span className="ml-2">stalled: no engine holds it; the next sweep takes it</span>}
                </dd>
                <dt className="text-slate-600">Order</dt>
                <dd>
                  <Link
                    className="font-mono text-xs break-all text-blue-800 underline"
                    to={`/orders/${found.subjectId}`}
                  >
                    {found.subjectId}
                  </Link>
                </dd>
                <dt className="text-slate-600">Step</dt>
                <dd className="font-mono text-xs">
                  {found.step}, attempt {found.attempt} ({found.completedSteps} steps done)
                </dd>
                {found.reason && (
                  <>
                    <dt className="text-slate-600">Why</dt>
                    <dd>{found.reason}</dd>
                  </>
                )}
                {MOVING.has(found.status) && (
                  <>
                    <dt className="text-slate-600">Next action due</dt>
                    <dd>{formatTime(found.dueAt)}</dd>
                  </>
                )}
                <dt className="text-slate-600">Engine</dt>
                <dd className="font-mono text-xs break-all">
                  {found.leaseOwner
                    ? `${found.leaseOwner}, lease until ${formatTime(found.leaseUntil ?? "")}`
                    : "none holds it"}
                </dd>
                <dt className="text-slate-600">Started</dt>
                <dd>{formatTime(found.createdAt)}</dd>
                <dt className="text-slate-600">{found.finishedAt ? "Finished" : "Changed"}</dt>
                <dd>{formatTime(found.finishedAt ?? found.updatedAt)}</dd>
                <dt className="text-slate-600">Audit</dt>
                <dd>
                  <Link
                    className="text-blue-800 underline"
                    to={`/operations/audit?entityType=saga&entityId=${encodeURIComponent(found.id)}`}
                  >
                    What operators did to it
                  </Link>
                </dd>
              </dl>
              <div className="mt-3">
                <SagaMoves
                  saga={found}
                  onMoved={(text) => {
                    setMessage(text);
                    reload();
                  }}
                />
              </div>
            </Section>
            <Section title="Timeline">
              <SagaTimeline
                status={found.status}
                step={found.step}
                reason={found.reason}
                timeline={found.timeline ?? []}
              />
            </Section>
            <Section title="Context">
              <pre className="max-h-64 overflow-auto text-xs" tabIndex={0} aria-label="The saga's context">
                {JSON.stringify(found.context, null, 2)}
              </pre>
            </Section>
          </div>
        )}
      </Guarded>
    </>
  );
}
