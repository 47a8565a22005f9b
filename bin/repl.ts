/**
 * `npm run repl`: a node that hosts no service and opens the Moleculer REPL on a running cluster
 * (`TRANSPORTER` and `NAMESPACE` must match the cluster's).
 */
import { ServiceBroker } from "moleculer";
import { ConfigError, loadConfig } from "../lib/config";
import { brokerOptions } from "../moleculer.config";
import { REPL_COMMANDS } from "./repl-commands";

async function main(): Promise<void> {
  const cfg = loadConfig();
  if (!cfg.transporter) {
    console.error("npm run repl joins a running cluster: set TRANSPORTER (e.g. nats://127.0.0.1:4222).");
    console.error("To start the embedded system with a REPL instead, run npm run dev.");
    process.exit(2);
  }
  const broker = new ServiceBroker({
    ...brokerOptions({ ...cfg, metricsPort: 0 }),
    nodeID: `repl-${cfg.nodeID}`,
    // The cluster health leaves REPL nodes out: they come and go and serve nothing.
    metadata: { role: "repl" },
    skipProcessEventRegistration: false,
    replOptions: { customCommands: REPL_COMMANDS },
  });
  await broker.start();
  await broker.repl();
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
