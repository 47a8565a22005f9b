/**
 * One dead letter, at its own address: the message, every failure, and its replay lineage (each replay, who sent it,
 * from which operation, and what became of it: resolved, or failed again with which error). Replay and discard are
 * here; both go through the API, which records them in the audit trail.
 */
import { useState } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useApi } from "../api/useApi";
import { errorText } from "../api/dead-letters";
import type { DeadLetter, Replay } from "../../../contracts/dead-letters";
import { Guarded, InlineError, Notice } from "../components/States";
import { Who } from "../components/Who";
import { useNames, userIdOf } from "../api/names";
import { Badge, Button, Field, PageTitle, Section, Table, formatTime } from "../components/ui";
import { useSession } from "../stores/session";

export function DeadLetterPage() {
  const { id = "" } = useParams();
  const loaded = useApi<DeadLetter & { replays: Replay[] }>(`/api/dlq/${id}`);
  return (
    <>
      <PageTitle>Dead letter</PageTitle>
      <Guarded loaded={loaded} what="the dead letter">
        {(entry) => <DeadLetterView entry={entry} onChanged={loaded.reload} />}
      </Guarded>
    </>
  );
}

function DeadLetterView({ entry, onChanged }: { entry: DeadLetter & { replays: Replay[] }; onChanged(): void }) {
  const canReplay = useSession((state) => state.can("dlq:replay"));
  const canDiscard = useSession((state) => state.can("dlq:discard"));
  const [reason, setReason] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const active = entry.status !== "DISCARDED" && entry.status !== "RESOLVED";
  const names = useNames(entry.replays.map((replay) => userIdOf(replay.replayedBy)));
  const order = (entry.message as { payload?: { order?: { id?: string } } } | null)?.payload?.order?.id;

  async function act(step: () => Promise<unknown>, done: string) {
    setError(null);
    try {
      await step();
      setMessage(done);
      onChanged();
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <>
      <Section title="What failed">
        <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
          <dt>Id</dt>
          <dd className="font-mono text-xs break-all">{entry.id}</dd>
          <dt>Status</dt>
          <dd>
            <Badge value={entry.status} />
          </dd>
          <dt>Channel → group</dt>
          <dd className="font-mono text-xs">
            {entry.channel} → {entry.group}
          </dd>
          <dt>Error</dt>
          <dd>
            <span className="font-mono text-xs">{entry.error.type}</span> {entry.errorSummary || entry.error.message}
          </dd>
          {order && (
            <>
              <dt>Order</dt>
              <dd>
                <Link className="font-mono text-xs text-blue-800 underline" to={`/orders/${order}`}>
                  {order}
                </Link>
              </dd>
            </>
          )}
          {entry.correlationId && (
            <>
              <dt>Correlation</dt>
              <dd className="font-mono text-xs break-all">{entry.correlationId}</dd>
            </>
          )}
          {entry.discardedBy && (
            <>
              <dt>Discarded</dt>
              <dd>
                by {entry.discardedBy}
                {entry.discardReason ? `: ${entry.discardReason}` : ""}
              </dd>
            </>
          )}
        </dl>
        {message && <Notice tone="success">{message}</Notice>}
        {active && (
          <div className="mt-3 flex flex-wrap items-end gap-2">
            {canReplay && entry.replayable && (
              <Button onClick={() => void act(() => api("POST", `/api/dlq/${entry.id}/replay`), "Replayed.")}>
                Replay
              </Button>
            )}
            {canDiscard && (
              <>
                <Field label="Reason to discard" value={reason} onChange={(event) => setReason(event.target.value)} />
                <Button
                  variant="danger"
                  disabled={!reason.trim()}
                  onClick={() =>
                    void act(() => api("DELETE", `/api/dlq/${entry.id}`, { body: { reason } }), "Discarded.")
                  }
                >
                  Discard
                </Button>
              </>
            )}
          </div>
        )}
        <InlineError message={error} className="mt-2" />
      </Section>
      <Section title="Replays">
        {entry.replays.length === 0 ? (
          <p className="text-sm">Never replayed.</p>
        ) : (
          <Table caption="Replays of this letter" head={["Replay", "Sent", "By", "Outcome", "Operation"]}>
            {entry.replays.map((replay) => (
              <tr key={replay.id}>
                <td className="px-2 py-2">
                  {replay.attempt === null ? <Badge value={replay.state} /> : `#${replay.attempt}`}
                </td>
                <td className="px-2 py-2 text-sm whitespace-nowrap">{formatTime(replay.replayedAt)}</td>
                <td className="px-2 py-2">
                  <Who actor={replay.replayedBy} names={names} />
                </td>
                <td className="px-2 py-2 text-sm">
                  {replay.outcome && <Badge value={replay.outcome} />}{" "}
                  {replay.outcomeError && errorText(replay.outcomeError)}
                  {replay.detail}
                </td>
                <td className="px-2 py-2">
                  {replay.operationId && (
                    <Link
                      className="font-mono text-xs text-blue-800 underline"
                      to={`/operations/dead-letters/replays/${replay.operationId}`}
                    >
                      {replay.operationId}
                    </Link>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </Section>
      <Section title="Failures">
        <ol className="list-decimal pl-5 text-sm">
          {entry.failures.map((failure, index) => (
            <li key={index}>
              {formatTime(failure.failedAt)}: {failure.error.type} {failure.error.message}
              {failure.error.data !== undefined && (
                <span className="block font-mono text-xs break-all text-slate-700">
                  {JSON.stringify(failure.error.data).slice(0, 500)}
                </span>
              )}
            </li>
          ))}
        </ol>
      </Section>
      <Section title="Message">
        <pre className="max-h-96 overflow-auto rounded bg-white p-2 text-xs" tabIndex={0}>
          {JSON.stringify(entry.message, null, 2)}
        </pre>
      </Section>
    </>
  );
}
