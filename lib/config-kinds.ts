/**
 * The kinds of configuration key (number, flag, enum, text, secret, URL, list, directory) and the walk that reads a
 * schema of them. Platform-neutral: the platform's keys are declared in `config-schema.ts`.
 *
 * A schema is a tree shaped like the configuration object it yields: each leaf is a `Setting` that knows its
 * environment key, its default, its documentation and how to read and validate its value, so the type, the defaults,
 * the validation and the README's table cannot drift apart.
 */
import path from "node:path";

export const NODE_ENVS = ["development", "production", "test"] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];

/** What a setting reads from: the environment, the mode (some defaults differ in production), where problems go. */
export interface Source {
  readonly mode: NodeEnv;
  readonly isProduction: boolean;
  /** The key's value, trimmed; undefined when unset or blank, so an empty `KEY=` means "the default". */
  text(key: string): string | undefined;
  /** Records what is wrong with a value; the load collects them all and then refuses, so one start shows them all. */
  problem(message: string): void;
}

/** One leaf of a schema: a documented environment key, or (key null) a value derived from other keys. */
export class Setting<T> {
  /** The environment key as the README names it; null for a derived value, which the README does not list. */
  readonly key: string | null;
  /** The README's default column. */
  readonly shown: string;
  /** The README's meaning column. */
  readonly doc: string;
  /** The value from `source`; on a bad value it records a problem and returns the default. */
  readonly read: (source: Source) => T;

  constructor(fields: { key: string | null; shown: string; doc: string; read: (source: Source) => T }) {
    this.key = fields.key;
    this.shown = fields.shown;
    this.doc = fields.doc;
    this.read = fields.read;
  }
}

/** A schema: settings, or nested groups of them, named as in the configuration object. */
export interface SchemaGroup {
  readonly [name: string]: Setting<unknown> | SchemaGroup;
}

/** The configuration object a schema yields: each setting replaced by the type of its value. */
export type ConfigOf<S> = S extends Setting<infer T> ? T : { -readonly [K in keyof S]: ConfigOf<S[K]> };

/** Reads every setting of `schema`, depth first, so problems come in the README's order. */
export function readSchema(schema: SchemaGroup, source: Source): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(schema)) {
    values[name] = entry instanceof Setting ? entry.read(source) : readSchema(entry, source);
  }
  return values;
}

/** One row of the README's configuration table. */
export interface KeyDoc {
  key: string;
  default: string;
  description: string;
}

/** The documented keys of `schema` in declaration order: the README's configuration table. */
export function documentedKeys(schema: SchemaGroup): KeyDoc[] {
  return Object.values(schema).flatMap((entry) => {
    if (!(entry instanceof Setting)) return documentedKeys(entry);
    return entry.key === null ? [] : [{ key: entry.key, default: entry.shown, description: entry.doc }];
  });
}

/** `source` without its problem sink: for a setting that looks at another key whose own problems are reported once. */
export function quietly(source: Source): Source {
  return { mode: source.mode, isProduction: source.isProduction, text: (key) => source.text(key), problem: () => {} };
}

interface Documented {
  key: string;
  doc: string;
  /** The README's default column, where the default value alone would not say it (`(none; required in production)`). */
  shown?: string;
}

/** The default column for a default that differs in production. */
function shownDefault(value: string, productionValue: string | undefined): string {
  return productionValue === undefined ? value : `${value} (${productionValue} in production)`;
}

/** The default a source gets: the production one, where there is one, in production mode. */
function defaultIn<T>(source: { isProduction: boolean }, options: { default: T; productionDefault?: T }): T {
  return source.isProduction ? (options.productionDefault ?? options.default) : options.default;
}

/** A number between `min` and `max` (0 and the largest safe integer unless given); fractions are allowed. */
export function number(
  options: Documented & { default: number; productionDefault?: number; min?: number; max?: number },
): Setting<number> {
  const { key, min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? shownDefault(String(options.default), options.productionDefault?.toString()),
    read: (source) => {
      const fallback = defaultIn(source, options);
      const value = source.text(key);
      if (value === undefined) return fallback;
      const parsed = Number(value);
      if (!Number.isFinite(parsed) || parsed < min || parsed > max) {
        source.problem(`${key}=${value} is not a number between ${min} and ${max}`);
        return fallback;
      }
      return parsed;
    },
  });
}

/** `true`/`1`/`yes` or `false`/`0`/`no`, in any case. */
export function flag(options: Documented & { default: boolean }): Setting<boolean> {
  const { key } = options;
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? String(options.default),
    read: (source) => {
      const value = source.text(key)?.toLowerCase();
      if (value === undefined) return options.default;
      if (["true", "1", "yes"].includes(value)) return true;
      if (["false", "0", "no"].includes(value)) return false;
      source.problem(`${key}=${value} is not true or false`);
      return options.default;
    },
  });
}

/** One of `values`, exactly as written. */
export function oneOf<const T extends string>(
  options: Documented & { values: readonly T[]; default: NoInfer<T>; productionDefault?: NoInfer<T> },
): Setting<T> {
  const { key, values } = options;
  const isAllowed = (value: string): value is T => values.some((allowed) => allowed === value);
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? shownDefault(options.default, options.productionDefault),
    read: (source) => {
      const fallback = defaultIn(source, options);
      const value = source.text(key);
      if (value === undefined) return fallback;
      if (isAllowed(value)) return value;
      source.problem(`${key}=${value} is not one of ${values.join(", ")}`);
      return fallback;
    },
  });
}

/** Free text with a default; an empty default shows as `(empty)`. */
export function text(options: Documented & { default: string }): Setting<string> {
  const { key } = options;
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? (options.default === "" ? "(empty)" : options.default),
    read: (source) => source.text(key) ?? options.default,
  });
}

/**
 * Free text, null when unset. `minLength` is for secrets: a short one is refused wherever it is set (whether it is
 * required is a rule of the schema, since it depends on other keys).
 */
export function optionalText(
  options: Documented & { minLength?: number; lowercase?: boolean },
): Setting<string | null> {
  const { key, minLength = 0 } = options;
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? "(none)",
    read: (source) => {
      const value = source.text(key);
      if (value === undefined) return null;
      if (value.length < minLength) source.problem(`${key} must be at least ${minLength} characters`);
      return options.lowercase ? value.toLowerCase() : value;
    },
  });
}

/** Checks `value` as a URL with one of `protocols`; shared by `url` and settings that read several URL keys. */
export function checkUrl(source: Source, key: string, value: string, protocols: readonly string[]): void {
  try {
    const parsed = new URL(value);
    if (!protocols.includes(parsed.protocol)) source.problem(`${key} must use ${protocols.join(" or ")}`);
  } catch {
    source.problem(`${key} is not a valid URL`);
  }
}

/** A URL with one of `protocols` (`"postgres:"`), null when unset. The text is kept as given. */
export function url(options: Documented & { protocols: readonly string[] }): Setting<string | null> {
  const { key } = options;
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? "(none)",
    read: (source) => {
      const value = source.text(key);
      if (value === undefined) return null;
      checkUrl(source, key, value, options.protocols);
      return value;
    },
  });
}

/** Splits a comma list, dropping blank entries. */
export function commaList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
}

/** A comma list, empty when unset; `check` returns what is wrong with the entries, if anything. */
export function list(options: Documented & { check?: (entries: string[]) => string | undefined }): Setting<string[]> {
  const { key } = options;
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? "(none)",
    read: (source) => {
      const entries = commaList(source.text(key));
      const problem = options.check?.(entries);
      if (problem !== undefined) source.problem(problem);
      return entries;
    },
  });
}

/** A directory, made absolute against the working directory at load, so a later `chdir` does not move it. */
export function directory(options: Documented & { default: string }): Setting<string> {
  const { key } = options;
  return new Setting({
    key,
    doc: options.doc,
    shown: options.shown ?? options.default,
    read: (source) => path.resolve(source.text(key) ?? options.default),
  });
}

/** A key whose reading no other kind covers (several entries checked one by one, a default per mode). */
export function custom<T>(options: Documented & { shown: string; read: (source: Source) => T }): Setting<T> {
  return new Setting({ key: options.key, shown: options.shown, doc: options.doc, read: options.read });
}

/** A value computed from the mode or other keys rather than read from a key of its own; not in the README. */
export function derived<T>(read: (source: Source) => T): Setting<T> {
  return new Setting({ key: null, shown: "", doc: "", read });
}
