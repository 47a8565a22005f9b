/**
 * Builds one node: a ServiceBroker with the broker options of `moleculer.config.ts` and the services `SERVICES` names.
 * Used by the start script, the REPL node and the tests, so they all run the same wiring.
 */
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { setConfig, type Config } from "../lib/config";
import { eventCatalogue } from "../lib/event-types";
import type { EventSchema } from "../lib/events";
import type { Page } from "../lib/paging";
import { SYSTEM_CALLER } from "../lib/permissions";
import { brokerOptions } from "../moleculer.config";
import { SERVICE_LOADERS, loadHealthService } from "../services";

export interface NodeOptions {
  /** Overrides of the broker options, e.g. a `stopped` hook or `logger: false` in tests. */
  broker?: Partial<BrokerOptions>;
}

/** Creates the broker and its services; the caller starts it. The configuration becomes the process-wide one. */
export async function createNode(cfg: Config, options: NodeOptions = {}): Promise<ServiceBroker> {
  setConfig(cfg);
  const broker = new ServiceBroker({ ...brokerOptions(cfg), ...options.broker });
  // The schema registry (audit) is the authority on event types beyond the built-in catalogue: what this node
  // publishes or consumes of a type it does not know is checked against the registered versions, or refused.
  eventCatalogue.useSource(async (type) => {
    const schemas = await broker.call<Page<EventSchema>, { type: string }>(
      "audit.schemas",
      { type },
      { meta: { caller: SYSTEM_CALLER } },
    );
    return schemas.rows;
  });
  broker.createService(await loadHealthService());
  for (const name of cfg.services) broker.createService(await SERVICE_LOADERS[name]());
  return broker;
}

/** "Ready" means what `/health/ready` says: every local dependency answers and the gateway's routes exist. */
export async function waitUntilReady(broker: ServiceBroker, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await broker.call("health.ready");
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        broker.logger.warn(`Started, but not ready after ${timeoutMs} ms: ${(err as Error).message}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
