/**
 * Crash points for fault tests. `FAILPOINTS=outbox.published:order.created,saga.committed:shipping` makes this
 * process kill itself with SIGKILL (no clean-up, as a power cut would) when it passes one of the named points. They
 * open the crash windows that at-least-once delivery must survive and that a kill timed from outside a process
 * cannot hit reliably: a relay that published but did not mark its rows sent, a saga whose transition committed
 * before its next command left the outbox. The configuration refuses them in production.
 */
import { config } from "./config";

/** Kills this process if `point` is armed. */
export function crashAt(point: string): void {
  if (config().failpoints.includes(point)) process.kill(process.pid, "SIGKILL");
}
