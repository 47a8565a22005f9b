/**
 * Text PostgreSQL can store. A JavaScript string may hold code units PostgreSQL refuses or silently changes: U+0000
 * (a `text` value refuses the byte, and Sequelize binds it as a backslash and a zero instead, silently; a `jsonb`
 * value refuses the `\u0000` escape) and lone surrogates (`jsonb` refuses the escape, `text` turns them into U+FFFD),
 * so a write fails or what is read back is not what was written, and a hash over it breaks. Requests that come
 * through the gateway are refused before they get here; internal calls, REPL calls, events and what a handler makes
 * of them (log lines, spans, dead letters, audit records) do not pass the gateway.
 *
 * So every `jsonb` value is written through `storableJson`, which escapes those code units reversibly: each U+0000,
 * lone surrogate and U+E000 (the escape character itself, from the Private Use Area) becomes U+E000 followed by the
 * code unit's four lowercase hex digits (`"a\u0000"` is stored as `"a\ue0000000"`). Only strings holding one of them
 * change; to read one back, replace each U+E000 and the four hex digits after it with that code unit. Plain `text`
 * parameters are checked instead (lib/database.ts refuses a query binding unstorable text), because a column such as
 * a display name or a password hash must hold what the caller gave or nothing.
 */

const ESCAPE = "\ue000";
// eslint-disable-next-line no-control-regex -- finding U+0000 is the point
const NEEDS_ESCAPE = /[\u0000\ue000]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// eslint-disable-next-line no-control-regex -- finding U+0000 is the point
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether PostgreSQL would refuse or alter `text` as a `text` or `jsonb` value. */
export function isUnstorableText(text: string): boolean {
  return UNSTORABLE.test(text);
}

/** `text` with U+0000, lone surrogates and U+E000 escaped as described above; other text is returned as it is. */
export function storableText(text: string): string {
  return text.replace(NEEDS_ESCAPE, (unit) => ESCAPE + unit.charCodeAt(0).toString(16).padStart(4, "0"));
}

function escapeStrings(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === "string") return storableText(value);
  // Keys too: `{"\u0000": 1}` is as unstorable as a value. The values are escaped when JSON.stringify visits them.
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [storableText(key), inner]));
  }
  return value;
}

/**
 * What JSON.stringify writes for a code unit `NEEDS_ESCAPE` matches: U+0000 and lone surrogates as `\u` escapes
 * (lowercase hex), U+E000 as itself. Finding none in the plain output means no string needed escaping; a match may
 * also be an escaped backslash followed by the same letters, which only costs the slow path.
 */
const ESCAPED_IN_JSON = /\\u0000|\\ud[89a-f][0-9a-f]{2}|\ue000/;

/** `JSON.stringify(value)` with every string (keys included) made storable: what every `jsonb` write binds. */
export function storableJson(value: unknown): string {
  // The common case (nothing to escape) costs one plain JSON.stringify: the replacer visits every key and value.
  const plain = JSON.stringify(value) ?? "null";
  if (!ESCAPED_IN_JSON.test(plain)) return plain;
  return JSON.stringify(value, escapeStrings) ?? "null";
}

/** `value` as a `jsonb` column will hold it: through JSON (no undefined, Dates as strings), strings made storable. */
export function storable<T>(value: T): T {
  return JSON.parse(storableJson(value)) as T;
}
