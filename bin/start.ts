/**
 * `npm start` (and `npm run dev` with `--repl`): runs one node with the services `SERVICES` names. Without
 * `DATABASE_URL` it first starts the embedded PostgreSQL under `DATA_DIR`. SIGINT/SIGTERM stop it in order: the
 * gateway stops accepting, in-flight requests finish (bounded by `SHUTDOWN_TIMEOUT`), services and pools close, then
 * the embedded database stops. A second signal stops waiting for the broker, but still stops the embedded database.
 */
import { ConfigError, DEFAULT_ADMIN_EMAIL, hasDatabase, loadConfig, type Config } from "../lib/config";
import { redactUrl } from "../lib/database";
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedPostgres } from "../lib/embedded-postgres";
import { createNode, waitUntilReady } from "./node";
import { REPL_COMMANDS } from "./repl-commands";
import { ensureUiBuilt } from "./ui";
import type { Server } from "node:http";
import type { ServiceBroker } from "moleculer";
import { startHealthServer } from "../lib/health-server";

async function main(): Promise<void> {
  const startedAt = performance.now();
  const withRepl = process.argv.includes("--repl");
  let cfg: Config;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    process.exit(2);
  }

  let embedded: EmbeddedPostgres | undefined;
  const log = (message: string) => console.info(`[aicunet] ${message}`);
  if (cfg.services.includes("api")) await ensureUiBuilt(log);
  if (!cfg.database.url && cfg.services.some(hasDatabase)) {
    embedded = await startEmbeddedPostgres({ dataDir: cfg.dataDir, port: cfg.embeddedPostgresPort, log }).catch(
      (err: Error) => {
        // A cause the user can fix is told as such; anything else keeps its stack for a bug report.
        console.error(err instanceof EmbeddedPostgresError ? err.message : `Embedded PostgreSQL: ${err.stack ?? err}`);
        return process.exit(1);
      },
    );
    cfg = { ...cfg, database: { ...cfg.database, url: embedded.url } };
  }

  let healthServer: Server | undefined;
  // The embedded server is a process of its own (pg_ctl detaches it): every way out of here stops it.
  const exit = async (code: number) => {
    await embedded?.stop().catch((err: Error) => console.error(`Stopping the embedded PostgreSQL: ${err.message}`));
    process.exit(code);
  };
  const broker = await createNode(cfg, {
    broker: {
      replOptions: { customCommands: REPL_COMMANDS },
      // Runs last in broker.stop(), whoever stops it (a signal or the REPL's `quit`).
      stopped: async () => {
        healthServer?.close();
        await embedded?.stop();
        embedded = undefined;
      },
    },
  }).catch(async (err: Error) => {
    console.error(`Could not build the node: ${err.stack ?? err}`);
    return exit(1);
  });

  broker.logger.info(
    `Starting node ${cfg.nodeID} (${cfg.env}): services [${cfg.services.join(", ")}], transporter ${
      cfg.transporter ?? "none"
    }, database ${cfg.database.url ? redactUrl(cfg.database.url) : "none"}${embedded ? " (embedded)" : ""}`,
  );

  // One Ctrl-C often arrives twice (from the terminal and relayed by npm), so only a signal more than a second after
  // the first one means "stop waiting".
  let stoppingSince: number | undefined;
  const shutdown = (signal: string) => {
    if (stoppingSince !== undefined) {
      if (Date.now() - stoppingSince < 1000) return;
      broker.logger.warn(`${signal} again: exiting without waiting for the services`);
      void exit(1);
      return;
    }
    stoppingSince = Date.now();
    broker.logger.info(`${signal} received: shutting down`);
    broker.stop().then(
      () => process.exit(0),
      (err) => {
        broker.logger.error(`Shutdown failed: ${(err as Error).stack ?? err}`);
        void exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));

  try {
    await broker.start();
  } catch (err) {
    // The reason in the message itself: a log line's extra arguments are not kept by every format.
    broker.logger.fatal(`Start failed: ${(err as Error).stack ?? err}`);
    await broker.stop().catch(() => undefined);
    await exit(1);
  }
  // A node without the gateway still answers the health probes on PORT.
  if (!cfg.services.includes("api")) healthServer = await startHealthServer(broker, cfg.port);
  await waitUntilReady(broker);
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(2);
  const gateway = cfg.services.includes("api") ? `, gateway on http://localhost:${cfg.port}` : "";
  broker.logger.info(`Ready in ${seconds} s${gateway}`);
  if (cfg.log.format === "pretty") console.info(startBanner(cfg, broker, embedded !== undefined));
  if (withRepl) await broker.repl();
}

/** The admin's e-mail and where its password comes from. */
function adminLine(cfg: Config): string {
  const email = cfg.auth.adminEmail ?? DEFAULT_ADMIN_EMAIL;
  return cfg.auth.adminPassword
    ? `${email} (password from ADMIN_PASSWORD)`
    : `${email} (the start that created it printed its generated password above, once)`;
}

/** What a person at the terminal needs once the node is ready: where it is, who signs in, where its data lives. */
function startBanner(cfg: Config, broker: ServiceBroker, embedded: boolean): string {
  const nodes = broker.registry.nodes
    .list({ onlyAvailable: true, withServices: false })
    .map((node) => node.id)
    .join(", ");
  const lines: [string, string][] = [
    ["Gateway", cfg.services.includes("api") ? `http://localhost:${cfg.port} (console at /, API docs at /docs)` : "—"],
    ["Admin", cfg.services.includes("auth") ? adminLine(cfg) : "—"],
    [
      "Data",
      embedded
        ? `${cfg.dataDir} (embedded PostgreSQL on 127.0.0.1:${cfg.embeddedPostgresPort})`
        : (cfg.database.url && redactUrl(cfg.database.url)) || "none",
    ],
    ["Services", cfg.services.join(", ")],
    ["Nodes", nodes],
  ];
  return ["", "AiCUnet is ready", ...lines.map(([name, value]) => `  ${name.padEnd(9)} ${value}`), ""].join("\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
