/**
 * The one place that reads the environment. Every key is declared once in `CONFIG_SCHEMA` (config-schema.ts) with
 * its kind, default and meaning; `loadConfig` reads them all into a typed, frozen `Config`, and the README's
 * configuration table is generated from the same declarations (`npm run docs:config`).
 */
import type { ServiceSettingSchema } from "moleculer";
import { type KeyDoc, type Source, documentedKeys, readSchema } from "./config-kinds";
import { CONFIG_RULES, CONFIG_SCHEMA, type Config } from "./config-schema";

export type { KeyDoc, NodeEnv } from "./config-kinds";
export {
  DEFAULT_ADMIN_EMAIL,
  SERVICE_NAMES,
  hasDatabase,
  type Config,
  type LogFormat,
  type LogLevel,
  type ServiceName,
  type TracingExporterName,
} from "./config-schema";

/** Every environment key, its default and what it does, in the README's order. */
export const CONFIG_KEYS: readonly KeyDoc[] = documentedKeys(CONFIG_SCHEMA);

/** Thrown when the environment cannot give a valid configuration; the node must not start. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** Reads every key of the schema from `env`. Collects every problem before failing, so one start shows them all. */
export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const text = (key: string): string | undefined => {
    const value = env[key]?.trim();
    return value ? value : undefined;
  };
  // Some defaults depend on the mode, so NODE_ENV is read first. Its own default does not, and its problem (if any)
  // is reported once, by the full read below.
  const mode = CONFIG_SCHEMA.env.read({ mode: "development", isProduction: false, text, problem: () => {} });
  const source: Source = {
    mode,
    isProduction: mode === "production",
    text,
    problem: (message) => problems.push(message),
  };
  // readSchema gives each name of the schema its setting's value, which is what `Config` (ConfigOf the schema)
  // spells out; the compiler cannot follow that through a loop over the names.
  const config = readSchema(CONFIG_SCHEMA, source) as Config;
  for (const rule of CONFIG_RULES) {
    if (rule.when(config)) problems.push(typeof rule.problem === "string" ? rule.problem : rule.problem(config));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/**
 * What every service finds in its settings: the configuration of the node it runs on. The node puts it there when it
 * creates the service (bin/node.ts `configured`), so two nodes in one process (tests, benches) each have their own,
 * and no module reads the environment when it loads.
 */
export interface ConfiguredSettings extends ServiceSettingSchema {
  config: Config;
}
