/**
 * Dead letters grouped by failure fingerprint (`GET /api/dlq/groups`): how many failed the same way, since when, the
 * detail of the latest failure, and the orders concerned. A group is replayed as a server-side operation on the
 * group's letters that had failed by its last one seen, after a dry run counted them and the operator typed that count.
 */
import { Link } from "react-router";
import { useApi } from "../api/useApi";
import type { DeadLetterGroup } from "../../../contracts/dead-letters";
import { Guarded } from "../components/States";
import { ReplayStarter } from "../components/ReplayStarter";
import { Button, Section, Table, formatTime } from "../components/ui";
import type { Page } from "../../../lib/paging";

/** The groups of the letters the page's filters select; `onShow` narrows the list to one group. */
export function DeadLetterGroups(props: {
  query: URLSearchParams;
  canReplay: boolean;
  onShow(fingerprint: string): void;
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
              />
            ))}
          </Table>
        )}
      </Guarded>
    </Section>
  );
}

function GroupRow(props: { group: DeadLetterGroup; canReplay: boolean; onShow(): void }) {
  const { group } = props;
  const detail = group.sampleError.data === undefined ? null : JSON.stringify(group.sampleError.data);
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
        </div>
        {props.canReplay && (
          <ReplayStarter selection={{ fingerprint: group.fingerprint, until: group.lastSeen }} label="Replay group…" />
        )}
      </td>
    </tr>
  );
}
