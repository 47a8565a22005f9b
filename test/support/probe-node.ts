/**
 * A node process for the event backbone's tests: the probe consumer on `PROBE_DATABASE_URL`, alone. Logs "Ready in" like `npm start`, so test/support/nodes.ts can start it.
 */
import { loadConfig } from "../../lib/config";
import { configured, createNode, waitUntilReady } from "../../bin/node";
import { probeService } from "./probe.service";

async function main() {
  // Only the probe: the node hosts none of the platform's services.
  const cfg = { ...loadConfig(), services: [] };
  const broker = await createNode(cfg);
  broker.createService(configured(probeService(process.env.PROBE_DATABASE_URL!), cfg));
  const stop = () => broker.stop().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  await broker.start();
  await waitUntilReady(broker);
  broker.logger.info("Ready in (probe node)");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
