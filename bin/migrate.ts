/**
 * `npm run migrate` (in the image: `node dist/bin/migrate.js`): creates each service's database when missing and
 * applies its migrations, then exits; the services `SERVICES` names, all by default. Deployments run it once per
 * release, before the new version's pods start (a Kubernetes Job); the services also apply pending migrations on start
 * under the same PostgreSQL advisory lock, so running both, or several at once, applies each migration once.
 */
import { ConfigError, loadConfig, type ServiceName } from "../lib/config";
import {
  createSequelize,
  databaseUrlFor,
  ensureDatabase,
  redactUrl,
  runMigrations,
  type Migration,
} from "../lib/database";

const MIGRATIONS: Record<ServiceName, () => Promise<Migration[]>> = {
  api: async () => [],
  auth: async () => (await import("../migrations/auth")).default,
  products: async () => (await import("../migrations/products")).default,
  orders: async () => (await import("../migrations/orders")).default,
  audit: async () => (await import("../migrations/audit")).default,
  logs: async () => (await import("../migrations/logs")).default,
  exec: async () => (await import("../migrations/exec")).default,
  dlq: async () => (await import("../migrations/dlq")).default,
  payments: async () => (await import("../migrations/payments")).default,
  shipping: async () => (await import("../migrations/shipping")).default,
  sagas: async () => (await import("../migrations/sagas")).default,
  alerts: async () => (await import("../migrations/alerts")).default,
};

async function main(): Promise<void> {
  const cfg = loadConfig();
  for (const service of cfg.services) {
    const migrations = await MIGRATIONS[service]();
    if (migrations.length === 0) continue;
    const url = databaseUrlFor(service, cfg);
    if (await ensureDatabase(url)) console.info(`[migrate] created ${redactUrl(url)}`);
    const sequelize = createSequelize(url, 1);
    try {
      const applied = await runMigrations(url, sequelize, migrations);
      console.info(`[migrate] ${service}: ${applied.length > 0 ? `applied ${applied.join(", ")}` : "up to date"}`);
    } finally {
      await sequelize.close();
    }
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
