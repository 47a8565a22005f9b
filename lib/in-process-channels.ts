/**
 * The channels of the single-process default (no NATS): @moleculer/channels' in-memory adapter, with one change. Its
 * publish hands the message to the local consumer groups (Moleculer events) and returns at once, so the outbox
 * would mark an event sent that no consumer has processed yet, and a process that died then would lose it. Here a
 * publish returns once every local group's handler has returned (processed and committed, dead-lettered, or given up
 * on), so the outbox marks a row sent only then: a crash before leaves the row unsent, the relay publishes it again
 * after the restart, and the groups that did process it drop it through their inbox.
 */
import { Adapters } from "@moleculer/channels";

interface PublishOptions {
  headers?: Record<string, string>;
}

export class InProcessChannelsAdapter extends Adapters.Fake {
  override async publish(channelName: string, payload: unknown, opts: PublishOptions = {}): Promise<void> {
    const adapter = this as unknown as {
      broker: { emit(event: string, data: unknown, opts: object): Promise<unknown> };
      opts: { eventPrefix: string };
    };
    // Moleculer's emit resolves once the local handlers have settled (it logs a handler's error, never throws it).
    await adapter.broker.emit(`${adapter.opts.eventPrefix}.${channelName}`, { payload, headers: opts.headers }, {});
  }
}
