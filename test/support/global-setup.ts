/**
 * Jest global setup for the integration and e2e projects: provides PostgreSQL and NATS to every test file through
 * `TEST_DATABASE_URL`, `TEST_NATS_URL` and `TEST_REDIS_URL` (environment set here is inherited by the test workers),
 * and builds the web UI once if it is not current, so node processes started in parallel do not each build it.
 */
import { ensureUiBuilt } from "../../bin/ui";
import { startNats, startRedis, startTestPostgres, type NatsServer, type PostgresServer } from "../../support/servers";

interface Servers {
  postgres?: PostgresServer;
  nats?: NatsServer;
  redis?: { url: string; stop(): Promise<void> };
}

declare global {
  var __aicunetServers: Servers | undefined;
}

export default async function globalSetup(): Promise<void> {
  const servers: Servers = {};
  globalThis.__aicunetServers = servers;
  await ensureUiBuilt((message) => console.info(`[global setup] ${message}`));
  if (process.env.DATABASE_URL) {
    process.env.TEST_DATABASE_URL = process.env.DATABASE_URL;
  } else {
    servers.postgres = await startTestPostgres();
    process.env.TEST_DATABASE_URL = servers.postgres.url;
  }
  if (process.env.NATS_URL) {
    process.env.TEST_NATS_URL = process.env.NATS_URL;
  } else {
    servers.nats = await startNats();
    process.env.TEST_NATS_URL = servers.nats.url;
  }
  if (process.env.REDIS_URL) {
    process.env.TEST_REDIS_URL = process.env.REDIS_URL;
  } else {
    servers.redis = await startRedis();
    process.env.TEST_REDIS_URL = servers.redis.url;
  }
}
