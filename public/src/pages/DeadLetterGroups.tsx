/**
 * Dead letters grouped by failure fingerprint (`GET /api/dlq/groups`): how many failed the same way, since when, the
 * detail of the latest failure, and the orders concerned. A group is replayed as a whole only after its operator has
 * typed the count they saw; the server replays exactly the letters of that group that had failed by the time the
 * groups were loaded, or nothing if the count no longer matches.
 */
import { useState } from "react";
import { Link } from "react-router";
import { api, describeError } from "../api/client";
import { useApi } from "../api/useApi";
import { Guarded, InlineError } from "../components/States";
import { Button, Field, Section, Table, formatTime } from "../components/ui";
import type { Page } from "../../../lib/paging";

interface DeadLetterGroup {
  fingerprint: string;
  channel: string;
  group: string;
  errorType: string;
  summary: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  sampleId: string;
  sampleError: { message: string; data?: unknown };
  orders: string[];
}

/** The groups of the letters the page's filters select; `onShow` narrows the list to one group. */
export function DeadLetterGroups(props: {
  query: URLSearchParams;
  canReplay: boolean;
  onShow(fingerprint: string): void;
  onReplayed(message: string): void;
}) {
  const query = new URLSearchParams(props.query);
  query.delete("page");
  query.delete("fingerprint");
  const loaded = useApi<Page<DeadLetterGroup>>(`/api/dlq/groups?${query}`);
  return (
    <Section title="Failure groups">
      <Guarded loaded={loaded} what="failure groups" empty={(page) => (page.total === 0 ? "No failures." : null)}>
        {(page) => (
          <Table caption="Failure groups" head={["Count", "Failure", "Seen", "Orders", ""]}>
            {page.rows.map((group) => (
              <GroupRow
                key={group.fingerprint}
                group={group}
                canReplay={props.canReplay && props.query.get("status") !== ""}
                onShow={() => props.onShow(group.fingerprint)}
                onReplayed={(message) => {
                  props.onReplayed(message);
                  loaded.reload();
                }}
              />
            ))}
          </Table>
        )}
      </Guarded>
    </Section>
  );
}

function GroupRow(props: {
  group: DeadLetterGroup;
  canReplay: boolean;
  onShow(): void;
  onReplayed(message: string): void;
}) {
  const { group } = props;
  const [confirming, setConfirming] = useState(false);
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const detail = group.sampleError.data === undefined ? null : JSON.stringify(group.sampleError.data);

  async function replay() {
    setBusy(true);
    setError(null);
    try {
      // The frozen selection: the group's letters that had failed by its last one seen, as many as were counted. One
      // that failed since, or was resolved meanwhile, makes the count differ: the server then replays nothing (409).
      const body = { fingerprint: group.fingerprint, until: group.lastSeen, expectedCount: group.count };
      const result = await api<{ replayed: number }>("POST", "/api/dlq/replay", { body });
      setConfirming(false);
      props.onReplayed(
        `Sent ${result.replayed} dead letters of "${group.summary}" back to ${group.channel}; each one's outcome shows in the list once its consumer has run it.`,
      );
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <tr className="align-top">
      <td className="px-2 py-2 text-lg font-semibold">{group.count}</td>
      <td className="px-2 py-2">
        <p>{group.summary || "(no message)"}</p>
        <p className="font-mono text-xs text-slate-600">
          {group.errorType} · {group.channel} → {group.group}
        </p>
        {detail && <p className="mt-1 font-mono text-xs break-all text-slate-700">{detail.slice(0, 300)}</p>}
      </td>
      <td className="px-2 py-2 text-xs whitespace-nowrap">
        first {formatTime(group.firstSeen)}
        <br />
        last {formatTime(group.lastSeen)}
      </td>
      <td className="px-2 py-2">
        <ul className="text-xs">
          {group.orders.slice(0, 3).map((id) => (
            <li key={id}>
              <Link className="font-mono text-blue-800 underline" to={`/orders/${id}`}>
                {id}
              </Link>
            </li>
          ))}
          {group.orders.length > 3 && <li>and {group.orders.length - 3} more</li>}
        </ul>
      </td>
      <td className="px-2 py-2">
        <div className="flex flex-wrap gap-2">
          <Button variant="secondary" onClick={props.onShow}>
            Show letters
          </Button>
          {props.canReplay && !confirming && <Button onClick={() => setConfirming(true)}>Replay group…</Button>}
        </div>
        {confirming && (
          <div
            role="group"
            aria-label={`Replay ${group.count} dead letters`}
            className="mt-2 flex flex-wrap items-end gap-2"
          >
            <Field
              label={`Type ${group.count} to replay them all`}
              inputMode="numeric"
              value={typed}
              onChange={(event) => setTyped(event.target.value)}
            />
            <Button disabled={busy || typed.trim() !== String(group.count)} onClick={() => void replay()}>
              Replay {group.count}
            </Button>
            <Button variant="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </Button>
          </div>
        )}
        <InlineError message={error} />
      </td>
    </tr>
  );
}
