/**
 * Logs: search stored records by level, service, request id and text; or follow them live, with pause, starting from
 * the latest stored lines. A record's request id is shown whole and finds every record of that request.
 */
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import { followEvents } from "../api/events";
import { useApi } from "../api/useApi";
import { useFilters } from "../components/useFilters";
import { ErrorNotice, Guarded, Notice } from "../components/States";
import { Button, Field, PageTitle, Pager, Section, Select, Table, formatTime } from "../components/ui";
import { logTailStore, useLogTail } from "../stores/logTail";
import type { LogRecord } from "../../../contracts/logs";
import type { Page } from "../../../lib/paging";

const LEVELS = ["", "fatal", "error", "warn", "info", "debug", "trace"];
const FILTERS = ["level", "service", "requestId", "search"];
/** The stored lines a live tail opens with. */
const TAIL_START = 50;

const levelColor = (level: string) =>
  level === "error" || level === "fatal" ? "text-red-800" : level === "warn" ? "text-amber-800" : "text-slate-800";

export function LogsPage() {
  const [params, setFilter] = useFilters();
  const [live, setLive] = useState(false);
  const filters = new URLSearchParams();
  for (const key of FILTERS) {
    const value = params.get(key);
    if (value) filters.set(key, value);
  }

  return (
    <>
      <PageTitle
        actions={
          <Button variant={live ? "secondary" : "primary"} onClick={() => setLive(!live)}>
            {live ? "Stop following" : "Follow live"}
          </Button>
        }
      >
        Logs
      </PageTitle>
      <Section title={live ? "Live tail" : "Search"}>
        <form className="mb-3 flex flex-wrap gap-3" onSubmit={(event) => event.preventDefault()} aria-label="Filters">
          <Select
            label="Level and above"
            value={params.get("level") ?? ""}
            onChange={(event) => setFilter("level", event.target.value)}
            options={LEVELS.map((level) => ({ value: level, label: level || "Any" }))}
          />
          <Field
            label="Service"
            value={params.get("service") ?? ""}
            onChange={(e) => setFilter("service", e.target.value)}
          />
          <Field
            label="Request id"
            value={params.get("requestId") ?? ""}
            onChange={(e) => setFilter("requestId", e.target.value)}
          />
          <Field
            label="Text"
            value={params.get("search") ?? ""}
            onChange={(e) => setFilter("search", e.target.value)}
          />
        </form>
        {live ? (
          <LiveTail filters={filters.toString()} />
        ) : (
          <SearchResults filters={filters} page={params.get("page")} onPage={(n) => setFilter("page", String(n))} />
        )}
      </Section>
    </>
  );
}

function SearchResults({
  filters,
  page,
  onPage,
}: {
  filters: URLSearchParams;
  page: string | null;
  onPage(n: number): void;
}) {
  const query = new URLSearchParams(filters);
  if (page) query.set("page", page);
  const loaded = useApi<Page<LogRecord>>(`/api/logs?${query}`);
  return (
    <Guarded loaded={loaded} what="log records" empty={(result) => (result.total === 0 ? "No records match." : null)}>
      {(result) => (
        <>
          <Records records={result.rows} />
          <Pager page={result.page} totalPages={result.totalPages} onPage={onPage} />
        </>
      )}
    </Guarded>
  );
}

function LiveTail({ filters }: { filters: string }) {
  const records = useLogTail((state) => state.records);
  const waiting = useLogTail((state) => state.waiting.length);
  const paused = useLogTail((state) => state.paused);
  const [error, setError] = useState<unknown>();
  const [unavailable, setUnavailable] = useState(false);
  useEffect(() => {
    const controller = new AbortController();
    const tail = logTailStore.getState();
    tail.clear();
    setError(undefined);
    const follow = (lastId?: string) =>
      followEvents(
        `/api/logs/stream?${filters}`,
        (event) => {
          if (event.event === "log") {
            setUnavailable(false);
            logTailStore.getState().receive(JSON.parse(event.data) as LogRecord);
          }
          if (event.event === "unavailable") setUnavailable(true);
        },
        controller.signal,
        lastId,
      ).then(
        // The server ends a stream when the access token would expire: reconnect from where it stopped.
        () => controller.signal.aborted || void follow(String(logTailStore.getState().lastId ?? "")),
        (err: unknown) => controller.signal.aborted || setError(err),
      );
    // The latest lines first, then what is stored after the newest of them.
    api<Page<LogRecord>>("GET", `/api/logs?${filters}${filters ? "&" : ""}pageSize=${TAIL_START}`, {
      signal: controller.signal,
    }).then(
      (latest) => {
        logTailStore.getState().seed(latest.rows);
        void follow(latest.rows[0] ? String(latest.rows[0].id) : undefined);
      },
      // Without them the tail still follows what comes next.
      () => controller.signal.aborted || void follow(),
    );
    return () => controller.abort();
  }, [filters]);

  if (error) return <ErrorNotice error={error} />;
  return (
    <>
      <div className="mb-2 flex items-center gap-3" aria-live="polite">
        <Button
          variant="secondary"
          onClick={() => (paused ? logTailStore.getState().resume() : logTailStore.getState().pause())}
        >
          {paused ? `Resume (${waiting} new)` : "Pause"}
        </Button>
        <span className="text-sm text-slate-600">
          {paused ? "Paused: new records wait." : "Following new records as they are stored."}
        </span>
      </div>
      {unavailable && <Notice>The log store is not answering; the tail will catch up when it is back.</Notice>}
      {records.length === 0 ? (
        <p className="text-sm text-slate-600">Waiting for new records…</p>
      ) : (
        <Records records={records} />
      )}
    </>
  );
}

function Records({ records }: { records: LogRecord[] }) {
  return (
    <Table caption="Log records" head={["Time", "Level", "Node", "Service", "Request", "Message"]}>
      {records.map((record) => (
        <tr key={record.id}>
          <td className="px-2 py-1 whitespace-nowrap">{formatTime(record.time)}</td>
          <td className={`px-2 py-1 font-medium ${levelColor(record.level)}`}>{record.level}</td>
          <td className="px-2 py-1 font-mono text-xs">{record.nodeId}</td>
          <td className="px-2 py-1">{record.module}</td>
          <td className="px-2 py-1">
            {record.requestId && (
              <Link
                className="font-mono text-xs break-all text-blue-800 underline"
                to={`/operations/logs?requestId=${encodeURIComponent(record.requestId)}`}
                title="Every record of this request"
              >
                {record.requestId}
              </Link>
            )}
          </td>
          <td className="px-2 py-1">{record.message}</td>
        </tr>
      ))}
    </Table>
  );
}
