/**
 * One replay operation, as the server runs it: who started it, its selection, its progress while it runs (asked
 * every second until it ends, so a reload or a gateway restart loses nothing), a cancel, and per letter what happened
 * and what became of it. The summary counts outcomes (resolved, failed again, pending), not requests sent.
 */
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useApi } from "../api/useApi";
import { errorText } from "../api/dead-letters";
import type { Replay, ReplayOperation } from "../../../contracts/dead-letters";
import { Guarded, InlineError } from "../components/States";
import { Who } from "../components/Who";
import { useNames, userIdOf } from "../api/names";
import { Badge, Button, PageTitle, Pager, Section, Table, formatTime } from "../components/ui";
import { useSession } from "../stores/session";
import type { Page } from "../../../lib/paging";

const POLL_MS = 1000;

export function ReplayOperationPage() {
  const { id = "" } = useParams();
  const canReplay = useSession((state) => state.can("dlq:replay"));
  const operation = useApi<ReplayOperation>(`/api/dlq/replays/${id}`);
  const [page, setPage] = useState(1);
  const letters = useApi<Page<Replay>>(`/api/dlq/replays/${id}/letters?page=${page}`);
  const [error, setError] = useState<string | null>(null);
  const names = useNames([userIdOf(operation.data?.startedBy), userIdOf(operation.data?.cancelledBy)]);
  const unsettled = operation.data?.status === "RUNNING" || (operation.data?.outcomes.pending ?? 0) > 0;
  const { reload: reloadOperation } = operation;
  const { reload: reloadLetters } = letters;
  useEffect(() => {
    if (!unsettled) return;
    const timer = setInterval(() => {
      reloadOperation();
      reloadLetters();
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [unsettled, reloadOperation, reloadLetters]);

  async function cancel() {
    setError(null);
    try {
      await api("POST", `/api/dlq/replays/${id}/cancel`);
      reloadOperation();
      reloadLetters();
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <>
      <PageTitle>Replay operation</PageTitle>
      <Guarded loaded={operation} what="the replay operation">
        {(op) => {
          const handled = op.progress.sent + op.progress.skipped + op.progress.cancelled;
          return (
            <Section title="Progress">
              <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
                <dt>Status</dt>
                <dd>
                  <Badge value={op.status} />
                </dd>
                <dt>Started</dt>
                <dd>
                  {formatTime(op.startedAt)} by <Who actor={op.startedBy} names={names} />
                </dd>
                {op.cancelledBy && (
                  <>
                    <dt>Cancelled</dt>
                    <dd>
                      {formatTime(op.finishedAt)} by <Who actor={op.cancelledBy} names={names} />
                    </dd>
                  </>
                )}
                <dt>Selection</dt>
                <dd className="font-mono text-xs break-all">{JSON.stringify(op.selection)}</dd>
                <dt>Rate</dt>
                <dd>{op.ratePerSecond} letters per second</dd>
              </dl>
              <div className="my-3" role="status" aria-live="polite">
                <progress className="w-full" max={op.total} value={handled} aria-label="Replay progress" />
                <p className="text-sm">
                  {op.progress.sent} of {op.total} sent
                  {op.progress.skipped > 0 && `, ${op.progress.skipped} skipped`}
                  {op.progress.cancelled > 0 && `, ${op.progress.cancelled} cancelled`}
                  {op.progress.waiting > 0 && `, ${op.progress.waiting} waiting`}.
                </p>
                <p className="text-sm font-medium" aria-label="Outcomes">
                  {op.outcomes.resolved} resolved, {op.outcomes.failed} failed again, {op.outcomes.pending} pending.
                </p>
              </div>
              {canReplay && op.status === "RUNNING" && (
                <Button variant="danger" onClick={() => void cancel()}>
                  Cancel the letters not sent yet
                </Button>
              )}
              <InlineError message={error} />
            </Section>
          );
        }}
      </Guarded>
      <Section title="Letters">
        <Guarded loaded={letters} what="the operation's letters">
          {(rows) => (
            <>
              <Table caption="Letters of the operation" head={["Dead letter", "State", "Outcome", "Detail"]}>
                {rows.rows.map((replay) => (
                  <tr key={replay.id}>
                    <td className="px-2 py-2">
                      <Link
                        className="font-mono text-xs text-blue-800 underline"
                        to={`/operations/dead-letters/${replay.deadLetterId}`}
                      >
                        {replay.deadLetterId}
                      </Link>
                    </td>
                    <td className="px-2 py-2">
                      <Badge value={replay.state} />
                    </td>
                    <td className="px-2 py-2">{replay.outcome && <Badge value={replay.outcome} />}</td>
                    <td className="px-2 py-2 text-sm">
                      {replay.outcomeError ? errorText(replay.outcomeError) : (replay.detail ?? "")}
                    </td>
                  </tr>
                ))}
              </Table>
              <Pager page={rows.page} totalPages={rows.totalPages} onPage={setPage} />
            </>
          )}
        </Guarded>
      </Section>
    </>
  );
}
