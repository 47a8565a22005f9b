/**
 * Alert incidents as plain data. A rule looks at the platform and says what is wrong right now, as a list of keys
 * (a channel with dead letters, a node that is gone, ...); `reconcile` compares that with the incidents still open
 * and decides what to open, what to resolve and whom to tell:
 *
 * - one incident per rule and key while the condition lasts (de-duplication: a firing key with an open incident
 *   changes nothing);
 * - a key that stops firing resolves its incident, with a resolved notice if the opening was notified;
 * - a key that fires again within the rule's cool-down after its last notification opens a new incident without
 *   notifying (a flapping condition does not page anyone twice), and so resolves it silently too.
 */

export const ALERT_RULES = ["error-rate", "dlq-depth", "circuit-breaker", "saga-failures", "node-health"] as const;
export type AlertRule = (typeof ALERT_RULES)[number];

/** What a rule sees now: one entry per thing that is wrong. */
export interface Firing {
  key: string;
  summary: string;
}

export interface OpenIncident {
  id: string;
  key: string;
  notified: boolean;
}

export interface Reconciliation {
  open: { key: string; summary: string; notify: boolean }[];
  resolve: { id: string; key: string; notify: boolean }[];
}

/**
 * @param lastNotifiedAt when each key of the rule last sent a firing notice (keys never notified are absent)
 */
export function reconcile(
  firing: readonly Firing[],
  open: readonly OpenIncident[],
  lastNotifiedAt: ReadonlyMap<string, Date>,
  now: Date,
  cooldownMs: number,
): Reconciliation {
  const openKeys = new Set(open.map((incident) => incident.key));
  const firingKeys = new Set(firing.map((entry) => entry.key));
  const seen = new Set<string>();
  const opened: Reconciliation["open"] = [];
  for (const entry of firing) {
    if (openKeys.has(entry.key) || seen.has(entry.key)) continue;
    seen.add(entry.key);
    const last = lastNotifiedAt.get(entry.key);
    opened.push({ ...entry, notify: !last || now.getTime() - last.getTime() >= cooldownMs });
  }
  const resolved = open
    .filter((incident) => !firingKeys.has(incident.key))
    .map((incident) => ({ id: incident.id, key: incident.key, notify: incident.notified }));
  return { open: opened, resolve: resolved };
}

/** Rule `node-health`: nodes the cluster health reports as lost (gone without a goodbye and not back). */
export function lostNodes(nodes: readonly { nodeID: string; state: string }[]): Firing[] {
  return nodes
    .filter((node) => node.state === "lost")
    .map((node) => ({ key: node.nodeID, summary: `Node ${node.nodeID} is gone (lost unexpectedly)` }));
}

/** Rule `saga-failures`: one incident per parked (FAILED) saga, so a second one parking is told apart. */
export function parkedSagas(
  sagas: readonly { id: string; definition: string; subjectId: string; step: string; reason: string | null }[],
): Firing[] {
  return sagas.map((saga) => ({
    key: saga.id,
    summary: `Saga ${saga.id} (${saga.definition} ${saga.subjectId}) parked at ${saga.step}: ${saga.reason ?? "no reason"}`,
  }));
}

/** Rule `dlq-depth`: channels whose pending dead letters reached the threshold. */
export function deepDeadLetterQueues(
  stats: readonly { channel: string; group: string; status: string; count: number }[],
  threshold: number,
): Firing[] {
  const pending = new Map<string, number>();
  for (const row of stats) {
    if (row.status === "PENDING") pending.set(row.channel, (pending.get(row.channel) ?? 0) + row.count);
  }
  return [...pending]
    .filter(([, count]) => count >= threshold)
    .map(([channel, count]) => ({ key: channel, summary: `${count} dead letter(s) pending on ${channel}` }));
}

/** The text of a notification, the same for email and chat. */
export function notificationText(
  kind: "firing" | "resolved",
  incident: { rule: string; key: string; summary: string; openedAt: Date; resolvedAt: Date | null },
): { subject: string; body: string } {
  const state = kind === "firing" ? "FIRING" : "RESOLVED";
  const subject = `[AiCUnet] ${state} ${incident.rule}: ${incident.summary}`;
  const lines = [
    `${state}: ${incident.summary}`,
    `Rule: ${incident.rule} (${incident.key})`,
    `Since: ${incident.openedAt.toISOString()}`,
  ];
  if (incident.resolvedAt) lines.push(`Resolved: ${incident.resolvedAt.toISOString()}`);
  return { subject, body: lines.join("\n") };
}
