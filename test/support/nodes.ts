/**
 * Nodes in this process, for tests only. Everything else about nodes (scopes, configurations, node processes,
 * database cleanup) is in the top-level support/nodes.ts that the benches use too.
 */
import type { BrokerOptions, ServiceBroker, ServiceSchema } from "moleculer";
import { configured, createNode, waitUntilReady } from "../../bin/node";
import type { Config } from "../../lib/config";

/**
 * A started, ready node in this process, silent unless `brokerOverrides` give it a logger. Its services, and the
 * `extraServices`, get `cfg` in their settings, so nodes in one process can each have their own configuration.
 */
export async function startInProcessNode(
  cfg: Config,
  extraServices: ServiceSchema[] = [],
  brokerOverrides: Partial<BrokerOptions> = { logger: false },
): Promise<ServiceBroker> {
  const broker = await createNode(cfg, { broker: brokerOverrides });
  for (const schema of extraServices) broker.createService(configured(schema, cfg));
  await broker.start();
  await waitUntilReady(broker);
  return broker;
}
