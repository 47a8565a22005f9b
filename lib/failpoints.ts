/**
 * Fault points for fault tests, armed by name in `FAILPOINTS`; the configuration refuses them in production.
 *
 * Crash points: `FAILPOINTS=outbox.published:order.created,saga.committed:shipping` makes this process kill itself
 * with SIGKILL (no clean-up, as a power cut would) when it passes one of the named points. They open the crash
 * windows that at-least-once delivery must survive and that a kill timed from outside a process cannot hit reliably:
 * a relay that published but did not mark its rows sent, a saga whose transition committed before its next command
 * left the outbox.
 *
 * Drop points: `outbox.drop:saga.stepDue` makes the outbox relay mark the first row of that channel sent without
 * publishing it, as a JetStream that acknowledged a message and lost it (it does not fsync each one) would. Only the
 * first: a loss is an accident, and a channel that loses everything is a different failure (an outage the relay
 * already retries).
 */
import { config } from "./config";

/** Kills this process if `point` is armed. */
export function crashAt(point: string): void {
  if (config().failpoints.includes(point)) process.kill(process.pid, "SIGKILL");
}

/** Drop points that have dropped their message in this process. */
const dropped = new Set<string>();

/** Whether the message passing `point` is to be lost: true once per process for an armed point. */
export function dropAt(point: string): boolean {
  if (!config().failpoints.includes(point) || dropped.has(point)) return false;
  dropped.add(point);
  return true;
}
