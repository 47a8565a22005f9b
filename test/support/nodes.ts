/**
 * Nodes in this process, for tests only: each gets its own jest module registry. Everything else about nodes (scopes,
 * configurations, node processes, database cleanup) is in the top-level support/nodes.ts that the benches use too.
 */
import type { BrokerOptions, ServiceBroker, ServiceSchema } from "moleculer";
import type { Config } from "../../lib/config";

/**
 * A started, ready node in this process, silent unless `brokerOverrides` give it a logger. Services read the configuration when their module loads (as in
 * a real process), so each node gets its own module registry and can have its own configuration.
 */
export async function startInProcessNode(
  cfg: Config,
  extraServices: ServiceSchema[] = [],
  brokerOverrides: Partial<BrokerOptions> = { logger: false },
): Promise<ServiceBroker> {
  let broker: ServiceBroker | undefined;
  await jest.isolateModulesAsync(async () => {
    const { createNode, waitUntilReady } = await import("../../bin/node");
    broker = await createNode(cfg, { broker: brokerOverrides });
    for (const schema of extraServices) broker.createService(schema);
    await broker.start();
    await waitUntilReady(broker);
  });
  return broker!;
}
