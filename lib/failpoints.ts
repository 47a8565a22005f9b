/**
 * Fault points for fault tests, armed by name in `FAILPOINTS`; the configuration refuses them in production.
 *
 * Crash points: `FAILPOINTS=outbox.published:order.created,saga.committed:shipping` makes this process kill itself
 * with SIGKILL (no clean-up, as a power cut would) when it passes one of the named points (also
 * `consumer.committing:<channel>`: a consumer has processed a message and not committed it yet;
 * `outbox.committed:<channel>`: a change and its outbox row are committed, nothing is published yet). They open the crash
 * windows that at-least-once delivery must survive and that a kill timed from outside a process cannot hit reliably:
 * a relay that published but did not mark its rows sent, a saga whose transition committed before its next command
 * left the outbox.
 *
 * Drop points: `outbox.drop:order.created` makes the outbox relay mark the first row of that channel sent without
 * publishing it, as a JetStream that acknowledged a message and lost it (it does not fsync each one) would. Only the
 * first (the first two when it is listed twice, and so on): a loss is an accident, and a channel that loses
 * everything is a different failure (an outage the relay already retries).
 */
/** Kills this process if `point` is armed (listed in `armed`, the node's `FAILPOINTS`). */
export function crashAt(armed: readonly string[], point: string): void {
  if (armed.includes(point)) process.kill(process.pid, "SIGKILL");
}

/**
 * How many messages each drop point has dropped, per node: keyed by the node's list of armed points (its
 * configuration's), so several nodes in one process (tests) each lose their own.
 */
const dropped = new WeakMap<readonly string[], Map<string, number>>();

/** Whether the message passing `point` is to be lost: true as many times per node as `armed` lists the point. */
export function dropAt(armed: readonly string[], point: string): boolean {
  const times = armed.filter((name) => name === point).length;
  if (times === 0) return false;
  let counts = dropped.get(armed);
  if (!counts) dropped.set(armed, (counts = new Map()));
  const done = counts.get(point) ?? 0;
  if (done >= times) return false;
  counts.set(point, done + 1);
  return true;
}
