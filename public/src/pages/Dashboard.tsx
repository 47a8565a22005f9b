/** The cluster at a glance: every node's health, and the traffic, dead letters and sagas of the last 15 minutes. */
import { useEffect } from "react";
import { Link } from "react-router";
import { useApi } from "../api/useApi";
import { Guarded } from "../components/States";
import { Sparkline } from "../components/Sparkline";
import { Badge, PageTitle, Section, Table, formatTime } from "../components/ui";
import type { Sample } from "../../../lib/dashboard";
import type { ClusterHealth } from "../../../contracts/health";

export interface DashboardData {
  generatedAt: string;
  health: ClusterHealth;
  current: Sample | null;
  history: Sample[];
  sources: Record<string, string>;
}

const REFRESH_MS = 15_000;

interface Tile {
  label: string;
  value: (sample: Sample) => number | null;
  format: (value: number) => string;
  unit?: string;
  source: string;
  /** The list behind the figure, filtered to what it counts. */
  list?: { to: string; name: string };
}

const TILES: Tile[] = [
  { label: "Requests", value: (s) => s.requestsPerSecond, format: (v) => `${v.toFixed(2)}/s`, source: "traffic" },
  {
    label: "Errors (5xx)",
    value: (s) => (s.errorRatio === null ? null : s.errorRatio * 100),
    format: (v) => `${v.toFixed(2)} %`,
    unit: " %",
    source: "traffic",
    list: { to: "/operations/logs?level=error", name: "Error log lines" },
  },
  {
    label: "Latency p50 (slowest gateway)",
    value: (s) => s.p50Ms,
    format: (v) => `${v.toFixed(1)} ms`,
    unit: " ms",
    source: "traffic",
  },
  {
    label: "Latency p99 (slowest gateway)",
    value: (s) => s.p99Ms,
    format: (v) => `${v.toFixed(1)} ms`,
    unit: " ms",
    source: "traffic",
  },
  {
    label: "Dead letters pending",
    value: (s) => s.deadLetters,
    format: (v) => String(v),
    source: "deadLetters",
    list: { to: "/operations/dead-letters?status=PENDING", name: "Pending dead letters" },
  },
  { label: "Sagas in flight", value: (s) => s.sagasInFlight, format: (v) => String(v), source: "sagas" },
  { label: "Sagas failed (parked)", value: (s) => s.sagasFailed, format: (v) => String(v), source: "sagas" },
  { label: "Sagas stalled (being swept)", value: (s) => s.sagasStalled, format: (v) => String(v), source: "sagas" },
];

export function DashboardPage() {
  const loaded = useApi<DashboardData>("/api/dashboard");
  const { reload } = loaded;
  useEffect(() => {
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);

  return (
    <>
      <PageTitle>Dashboard</PageTitle>
      <Guarded loaded={loaded} what="the dashboard">
        {(data) => (
          <div className="space-y-6">
            <p className="text-sm text-slate-600">
              Cluster <Badge value={data.health.status} /> · updated {formatTime(data.generatedAt)} · every 15 s, charts
              over the last 15 minutes
            </p>
            <ul className="grid grid-cols-1 gap-3 sm:grid-cols-2 lg:grid-cols-4">
              {TILES.map((tile) => {
                const value = data.current ? tile.value(data.current) : null;
                return (
                  <li key={tile.label} className="rounded-lg border border-slate-200 bg-white p-3 shadow-sm">
                    <p className="text-sm text-slate-600">{tile.label}</p>
                    <p className="text-2xl font-semibold" data-testid={`tile-${tile.label}`}>
                      {value === null ? "—" : tile.format(value)}
                    </p>
                    <Sparkline values={data.history.map(tile.value)} label={tile.label} unit={tile.unit} />
                    <p className="mt-1 text-xs text-slate-500">Source: {data.sources[tile.source]}</p>
                    {tile.list && (
                      <Link className="mt-1 inline-block text-sm text-blue-800 underline" to={tile.list.to}>
                        {tile.list.name}
                      </Link>
                    )}
                  </li>
                );
              })}
            </ul>
            <Section title="Nodes and services">
              <p className="mb-2 text-xs text-slate-500">Source: {data.sources.health}</p>
              <Table caption="Nodes" head={["Node", "State", "Ready", "Services", "Checks", "Up for"]}>
                {data.health.nodes.map((node) => (
                  <tr key={node.nodeID}>
                    <td className="px-2 py-2 font-mono text-xs">{node.nodeID}</td>
                    <td className="px-2 py-2">
                      <Badge value={node.state} />
                    </td>
                    <td className="px-2 py-2">{node.ready ? "yes" : "no"}</td>
                    <td className="px-2 py-2">{node.services.join(", ")}</td>
                    <td className="px-2 py-2">
                      {node.checks.filter((check) => !check.ok).length === 0
                        ? `${node.checks.length} ok`
                        : node.checks
                            .filter((check) => !check.ok)
                            .map((check) => `${check.name}: ${check.error ?? "failing"}`)
                            .join("; ")}
                    </td>
                    <td className="px-2 py-2">{Math.round(node.uptimeSeconds / 60)} min</td>
                  </tr>
                ))}
              </Table>
            </Section>
          </div>
        )}
      </Guarded>
    </>
  );
}
