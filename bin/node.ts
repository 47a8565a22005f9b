/**
 * Builds one node: a ServiceBroker with the broker options of `moleculer.config.ts` and the services `SERVICES` names.
 * Used by the start script, the REPL node and the tests, so they all run the same wiring.
 */
import { ServiceBroker, type BrokerOptions, type ServiceSchema } from "moleculer";
import type { Config, ConfiguredSettings } from "../lib/config";
import { eventCatalogueOf } from "../lib/event-types";
import type { EventSchema } from "../lib/events";
import type { Page } from "../lib/paging";
import { SYSTEM_CALLER } from "../lib/permissions";
import { brokerOptions } from "../moleculer.config";
import { SERVICE_LOADERS, loadHealthService } from "../services";

export interface NodeOptions {
  /** Overrides of the broker options, e.g. a `stopped` hook or `logger: false` in tests. */
  broker?: Partial<BrokerOptions>;
}

/**
 * The schema with the node's configuration in its settings, where the service and its mixins read it. Secure: the
 * registry publishes a service's settings to every node, and the configuration holds secrets.
 */
export function configured(schema: ServiceSchema, cfg: Config): ServiceSchema {
  const secure = schema.settings?.$secureSettings ?? [];
  const settings: ConfiguredSettings = { ...schema.settings, config: cfg, $secureSettings: [...secure, "config"] };
  return { ...schema, settings };
}

/** Creates the broker and its services, each given `cfg` in its settings; the caller starts it. */
export async function createNode(cfg: Config, options: NodeOptions = {}): Promise<ServiceBroker> {
  const broker = new ServiceBroker({ ...brokerOptions(cfg), ...options.broker });
  // The schema registry (audit) is the authority on event types beyond the built-in catalogue: what this node
  // publishes or consumes of a type it does not know is checked against the registered versions, or refused.
  eventCatalogueOf(broker).useSource(async (type) => {
    const schemas = await broker.call<Page<EventSchema>, { type: string }>(
      "audit.schemas",
      { type },
      { meta: { caller: SYSTEM_CALLER } },
    );
    return schemas.rows;
  });
  broker.createService(configured(await loadHealthService(), cfg));
  for (const name of cfg.services) broker.createService(configured(await SERVICE_LOADERS[name](), cfg));
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
