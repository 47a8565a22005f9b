/**
 * One phase of the saga bench summed up from the databases: which of its orders' sagas completed, their end-to-end
 * time split along the saga's timeline (`saga_events`), the rates, and the checks: how many of its orders are
 * COMPLETED, have a CHARGED payment and a shipment.
 */
import type { Client } from "pg";
import type { CpuReport } from "./saga-cpu";
import type { Placed } from "./saga-load";

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank.
  const at = (q: number) => Math.round(sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN);
  return { p50: at(0.5), p99: at(0.99), max: Math.round(sorted[sorted.length - 1] ?? NaN) };
}

export interface PhaseResult {
  name: string;
  /** Orders per second offered (fixed rate) or sagas in flight (closed loop). */
  load: string;
  placed: number;
  postErrors: number;
  completed: number;
  /** Sagas of placed orders that ended otherwise, or had not ended when the bench gave up. */
  notCompleted: Record<string, number>;
  ordersCompleted: number;
  paymentsCharged: number;
  shipments: number;
  /** First POST sent → last saga completed. */
  seconds: number;
  sagasPerSecond: number;
  /** Sagas completed per second between the first completion and the last POST (the ramp-up and the drain left out). */
  steadySagasPerSecond: number;
  endToEnd: Percentiles;
  post: Percentiles;
  /** POST sent → the saga's first timeline entry (the POST, the orders outbox, JetStream, the sagas consumer). */
  toStart: Percentiles;
  /** The saga's first → last timeline entry (seven step commands through the sagas outbox and JetStream). */
  steps: Percentiles;
  /**
   * Of `steps`, the time spent in the seven actions (products.reserve, payments.charge, orders.transition ×3,
   * shipping.create, products.commitReservation).
   */
  actions: Percentiles;
  /** Of `steps`, the rest per step command: outbox row → relay round → JetStream → consumer transaction. */
  hop: Percentiles;
  /** The longest an open-loop POST went out after its scheduled time. */
  sendLagMs?: number;
  cpu: CpuReport;
}

export interface Databases {
  sagas: Client;
  orders: Client;
  payments: Client;
  shipping: Client;
}

export async function summarize(
  name: string,
  load: string,
  placedAll: Placed[],
  db: Databases,
  cpu: CpuReport,
  sendLagMs?: number,
): Promise<PhaseResult> {
  const placed = placedAll.filter((p) => p.orderId);
  const ids = placed.map((p) => p.orderId!);
  const { rows } = await db.sagas.query<{
    subject_id: string;
    status: string;
    started_ms: string;
    ended_ms: string;
    action_ms: string;
    events: string;
  }>(
    `SELECT s.subject_id, s.status,
       extract(epoch FROM min(e.at)) * 1000 AS started_ms,
       extract(epoch FROM max(e.at)) * 1000 AS ended_ms,
       coalesce(sum(e.duration_ms), 0) AS action_ms,
       count(*) AS events
     FROM sagas s JOIN saga_events e ON e.saga_id = s.id
     WHERE s.definition = 'order' AND s.subject_id = ANY($1)
     GROUP BY s.id`,
    [ids],
  );
  const byOrder = new Map(rows.map((row) => [row.subject_id, row]));
  const notCompleted: Record<string, number> = {};
  const endToEnd: number[] = [];
  const toStart: number[] = [];
  const steps: number[] = [];
  const actions: number[] = [];
  const hops: number[] = [];
  const ends: number[] = [];
  for (const p of placed) {
    const saga = byOrder.get(p.orderId!);
    const status = saga?.status ?? "NO SAGA";
    if (status !== "COMPLETED") {
      notCompleted[status] = (notCompleted[status] ?? 0) + 1;
      continue;
    }
    const started = Number(saga!.started_ms);
    const ended = Number(saga!.ended_ms);
    endToEnd.push(ended - p.sentAt);
    toStart.push(started - p.sentAt);
    steps.push(ended - started);
    actions.push(Number(saga!.action_ms));
    // Entries after `start`: one per step command the saga sent itself.
    hops.push((ended - started - Number(saga!.action_ms)) / (Number(saga!.events) - 1));
    ends.push(ended);
  }
  const count = async (client: Client, sql: string) =>
    Number((await client.query<{ n: string }>(sql, [ids])).rows[0].n);
  const firstSent = Math.min(...placedAll.map((p) => p.sentAt));
  const lastSent = Math.max(...placedAll.map((p) => p.sentAt));
  const firstEnd = Math.min(...ends);
  const seconds = (Math.max(...ends) - firstSent) / 1000;
  const steadyCount = ends.filter((end) => end >= firstEnd && end <= lastSent).length;
  return {
    name,
    load,
    placed: placedAll.length,
    postErrors: placedAll.length - placed.length,
    completed: endToEnd.length,
    notCompleted,
    ordersCompleted: await count(
      db.orders,
      "SELECT count(*) AS n FROM orders WHERE id = ANY($1::uuid[]) AND status = 'COMPLETED'",
    ),
    paymentsCharged: await count(
      db.payments,
      "SELECT count(DISTINCT order_id) AS n FROM payments WHERE order_id = ANY($1::uuid[]) AND status = 'CHARGED'",
    ),
    shipments: await count(
      db.shipping,
      "SELECT count(DISTINCT order_id) AS n FROM shipments WHERE order_id = ANY($1::uuid[]) AND status = 'CREATED'",
    ),
    seconds: Number(seconds.toFixed(2)),
    sagasPerSecond: Number((endToEnd.length / seconds).toFixed(1)),
    steadySagasPerSecond: Number((steadyCount / ((lastSent - firstEnd) / 1000)).toFixed(1)),
    endToEnd: percentiles(endToEnd),
    post: percentiles(placed.map((p) => p.postMs)),
    toStart: percentiles(toStart),
    steps: percentiles(steps),
    actions: percentiles(actions),
    hop: percentiles(hops),
    sendLagMs: sendLagMs === undefined ? undefined : Math.round(sendLagMs),
    cpu,
  };
}
