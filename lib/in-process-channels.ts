/**
 * The channels of the single-process default (no NATS): @moleculer/channels' in-memory adapter, with one change. Its
 * publish hands the message to the local consumer groups (Moleculer events) and returns at once, so the outbox
 * would mark an event sent that no consumer has processed yet, and a process that died then would lose it. Here a
 * publish with `untilProcessed` (the outbox's) returns once every local group's handler has returned (processed and
 * committed, dead-lettered, or given up on), so the outbox marks a row sent only then: a crash before leaves the row
 * unsent, the relay publishes it again after the restart, and the groups that did process it drop it through their
 * inbox. Other publishes (a dead letter, a replay) return at once as before: their callers may hold locks that the
 * consumers they reach need (a replay holds its dead letter's row, which the `message.recovered` it causes updates).
 * The NATS adapter ignores the option: JetStream's acknowledgement is what it waits for.
 */
import { Adapters } from "@moleculer/channels";

export interface PublishOptions {
  headers?: Record<string, string>;
  /** Return once the local consumer groups have processed the message. */
  untilProcessed?: boolean;
}

export class InProcessChannelsAdapter extends Adapters.Fake {
  override async publish(channelName: string, payload: unknown, opts: PublishOptions = {}): Promise<void> {
    // Moleculer's emit resolves once the local handlers have settled (it logs a handler's error, never throws it).
    const processed = this.broker.emit(
      `${this.opts.eventPrefix}.${channelName}`,
      { payload, headers: opts.headers },
      {},
    );
    if (opts.untilProcessed) await processed;
  }
}
