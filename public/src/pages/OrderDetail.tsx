/**
 * One order and everything it caused, side by side: the saga's timeline (each step, attempt, duration, error and
 * compensation, repeated attempts collapsed with their count), the dead letters about it, and the audit records, log
 * lines and trace spans that share the order's request id. Status changes
 * arrive live over server-sent events; if the stream cannot be opened the page polls every 3 s instead.
 */
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { followEvents } from "../api/events";
import { useApi } from "../api/useApi";
import { ErrorNotice, Guarded, Loading, Notice } from "../components/States";
import { Badge, PageTitle, Section, Table, formatMoney, formatTime } from "../components/ui";
import { SagaTimeline } from "../components/SagaTimeline";
import { Waterfall } from "../components/Waterfall";
import { Who } from "../components/Who";
import { useNames } from "../api/names";
import { useSession } from "../stores/session";
import type { DeadLetter } from "../../../contracts/dead-letters";
import type { Page } from "../../../lib/paging";
import { isFinal, type OrderWithSaga } from "../../../contracts/orders";
import type { Saga } from "../../../contracts/sagas";
import type { AuditRecord } from "../../../contracts/audit";
import type { LogRecord, StoredSpan } from "../../../contracts/logs";

const FALLBACK_POLL_MS = 3000;
const RECONNECT_MS = 500;

/**
 * The order, kept current: from the live stream (reconnected when the server ends it at the access token's lifetime),
 * or by polling when the stream cannot be opened.
 */
function useLiveOrder(id: string) {
  const [order, setOrder] = useState<OrderWithSaga>();
  const [error, setError] = useState<unknown>();
  const [mode, setMode] = useState<"live" | "waiting" | "polling" | "ended">("live");
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setInterval> | undefined;
    let ended = false;
    const poll = () =>
      api<OrderWithSaga>("GET", `/api/orders/${id}`, { signal: controller.signal }).then(
        (next) => {
          setOrder(next);
          if (isFinal(next.status)) {
            clearInterval(timer);
            setMode("ended");
          }
        },
        (err: unknown) => controller.signal.aborted || setError(err),
      );
    const follow = (): Promise<void> =>
      followEvents(
        `/api/orders/${id}/stream`,
        (event) => {
          if (event.event === "order") {
            setOrder(JSON.parse(event.data) as OrderWithSaga);
            setMode("live");
          }
          // The server could not read the order this time; it keeps trying.
          if (event.event === "unavailable") setMode("waiting");
          if (event.event === "end") {
            ended = true;
            setMode("ended");
          }
        },
        controller.signal,
      ).then(
        async () => {
          if (controller.signal.aborted || ended) return;
          // A moment's pause, so a server that keeps ending streams at once is not asked in a tight loop.
          await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
          if (!controller.signal.aborted) return follow();
        },
        (err: unknown) => {
          if (controller.signal.aborted) return;
          if ((err as { status?: number }).status && (err as { status: number }).status < 500) {
            setError(err);
            return;
          }
          setMode("polling");
          void poll();
          timer = setInterval(() => void poll(), FALLBACK_POLL_MS);
        },
      );
    void follow();
    return () => {
      controller.abort();
      clearInterval(timer);
    };
  }, [id]);
  return { order, error, mode };
}

export function OrderDetailPage() {
  const { id = "" } = useParams();
  const { order, error, mode } = useLiveOrder(id);
  if (error) return <ErrorNotice error={error} />;
  if (!order) return <Loading what="the order" />;
  return (
    <>
      <PageTitle>
        Order <span className="font-mono text-base">{order.id}</span> <Badge value={order.status} />
      </PageTitle>
      <p className="mb-4 text-sm text-slate-600" aria-live="polite">
        {mode === "live" && "Live: changes appear as they happen."}
        {mode === "waiting" && "Live, but the order service does not answer right now: retrying."}
        {mode === "polling" && "Checking for changes every 3 s."}
        {mode === "ended" && "This order has reached its final state."}{" "}
        <Link to="/orders" className="text-blue-800 underline">
          Back to orders
        </Link>
      </p>
      <div className="grid grid-cols-1 gap-4 xl:grid-cols-2">
        <div className="space-y-4">
          <Section title="Order">
            <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
              <dt className="text-slate-600">Total</dt>
              <dd>{formatMoney(order.total)}</dd>
              <dt className="text-slate-600">Payment</dt>
              <dd>{order.paymentMethod}</dd>
              <dt className="text-slate-600">Placed</dt>
              <dd>{formatTime(order.createdAt)}</dd>
              {order.statusReason && (
                <>
                  <dt className="text-slate-600">Why</dt>
                  <dd>{order.statusReason}</dd>
                </>
              )}
              <dt className="text-slate-600">Trace id</dt>
              <dd className="font-mono text-xs" data-testid="trace-id">
                {order.requestId ?? "—"}
              </dd>
              <dt className="text-slate-600">Items</dt>
              <dd>{order.lines.map((line) => `${line.quantity} × ${line.name}`).join(", ")}</dd>
            </dl>
          </Section>
          <SagaSection saga={order.saga} />
          <OrderDeadLetters orderId={order.id} version={order.status} />
        </div>
        <div className="space-y-4">
          {order.requestId && (
            <Related requestId={order.requestId} version={`${order.status}:${order.saga?.timeline?.length ?? 0}`} />
          )}
        </div>
      </div>
    </>
  );
}

function SagaSection({ saga }: { saga: Saga | null }) {
  const can = useSession((state) => state.can);
  return (
    <Section title="Saga timeline">
      {saga ? (
        <>
          {can("sagas:read") && (
            <p className="mb-2 text-sm">
              <Link className="text-blue-800 underline" to={`/operations/sagas/${saga.id}`}>
                The saga's page
              </Link>{" "}
              (its engine, lease and context; retry or compensate)
            </p>
          )}
          <SagaTimeline status={saga.status} step={saga.step} reason={saga.reason} timeline={saga.timeline ?? []} />
        </>
      ) : (
        <Notice>The saga has not started yet.</Notice>
      )}
    </Section>
  );
}

/** Calls `reloads` again `delaysMs` after `version` (the order's state) changes. */
function useReloadsAfter(version: string, delaysMs: number[], reloads: (() => void)[]): void {
  useEffect(() => {
    const timers = delaysMs.map((delay) => setTimeout(() => reloads.forEach((reload) => reload()), delay));
    return () => timers.forEach(clearTimeout);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- the reload functions are stable; the version drives it
  }, [version]);
}

/** The dead letters about this order (any channel and consumer group), each opening its page. */
function OrderDeadLetters({ orderId, version }: { orderId: string; version: string }) {
  const can = useSession((state) => state.can);
  const letters = useApi<Page<DeadLetter>>(can("dlq:read") ? `/api/dlq?orderId=${orderId}&pageSize=20` : null);
  // A consumer dead-letters a little after the change it failed on.
  useReloadsAfter(version, [2500, 6000], [letters.reload]);
  if (!can("dlq:read")) return null;
  return (
    <Section title="Dead letters">
      <Guarded loaded={letters} what="dead letters" empty={(page) => (page.total === 0 ? "None." : null)}>
        {(page) => (
          <Table caption="Dead letters of the order" head={["Failed", "Consumer", "Error", "Status"]}>
            {page.rows.map((letter) => (
              <tr key={letter.id}>
                <td className="px-2 py-1 whitespace-nowrap">
                  <Link className="text-blue-800 underline" to={`/operations/dead-letters/${letter.id}`}>
                    {formatTime(letter.failedAt)}
                  </Link>
                </td>
                <td className="px-2 py-1 font-mono text-xs">
                  {letter.channel} → {letter.group}
                </td>
                <td className="px-2 py-1">{letter.errorSummary || letter.error.message}</td>
                <td className="px-2 py-1">
                  <Badge value={letter.status} />
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Guarded>
    </Section>
  );
}

/** What shares the order's request id: audit records, log lines, spans. Reloaded as the order moves on. */
function Related({ requestId, version }: { requestId: string; version: string }) {
  const can = useSession((state) => state.can);
  const encoded = encodeURIComponent(requestId);
  const audit = useApi<{ rows: AuditRecord[] }>(
    can("audit:read") ? `/api/audit?requestId=${encoded}&pageSize=100` : null,
  );
  const logs = useApi<{ rows: LogRecord[] }>(can("logs:read") ? `/api/logs?requestId=${encoded}&pageSize=100` : null);
  const trace = useApi<{ spans: StoredSpan[] }>(can("logs:read") ? `/api/logs/traces/${encoded}` : null);
  const names = useNames(
    (audit.data?.rows ?? []).map((record) => (record.actor.type === "user" ? record.actor.id : null)),
  );
  // Records reach the audit trail, the log store and the span store a little after the change that caused them.
  useReloadsAfter(version, [0, 2500, 6000], [audit.reload, logs.reload, trace.reload]);
  return (
    <>
      {can("audit:read") && (
        <Section title="Audit entries">
          <Guarded
            loaded={audit}
            what="audit entries"
            empty={(page) => (page.rows.length === 0 ? "No audit entries yet." : null)}
          >
            {(page) => (
              <Table caption="Audit entries" head={["When", "What", "Who", "Entity"]}>
                {[...page.rows].reverse().map((record) => (
                  <tr key={record.seq}>
                    <td className="px-2 py-1 whitespace-nowrap">
                      <Link className="text-blue-800 underline" to={`/operations/audit/${record.id}`}>
                        {formatTime(record.occurredAt)}
                      </Link>
                    </td>
                    <td className="px-2 py-1 font-mono text-xs">{record.name}</td>
                    <td className="px-2 py-1">
                      <Who
                        actor={record.actor.id ? `${record.actor.type}:${record.actor.id}` : record.actor.type}
                        names={names}
                      />
                    </td>
                    <td className="px-2 py-1">{record.entity.type}</td>
                  </tr>
                ))}
              </Table>
            )}
          </Guarded>
        </Section>
      )}
      {can("logs:read") && (
        <Section title="Log lines">
          <Guarded
            loaded={logs}
            what="log lines"
            empty={(page) => (page.rows.length === 0 ? "No log lines yet." : null)}
          >
            {(page) => (
              <ul className="space-y-1 font-mono text-xs" aria-label="Log lines">
                {[...page.rows].reverse().map((record) => (
                  <li key={record.id}>
                    <span className="text-slate-600">{formatTime(record.time)}</span> {record.level.toUpperCase()}{" "}
                    {record.nodeId}/{record.module}: {record.message}
                  </li>
                ))}
              </ul>
            )}
          </Guarded>
        </Section>
      )}
      {can("logs:read") && (
        <Section title="Trace">
          {trace.error && (trace.error as { status?: number }).status === 404 ? (
            <Notice>
              No spans stored for this trace yet: nodes send them every 5 s when TRACING_EXPORTER includes event.
            </Notice>
          ) : (
            <Guarded loaded={trace} what="the trace">
              {(data) => <Waterfall spans={data.spans} />}
            </Guarded>
          )}
        </Section>
      )}
    </>
  );
}
