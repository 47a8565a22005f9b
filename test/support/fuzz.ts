/**
 * Hostile requests for every operation of the gateway's OpenAPI document (`GET /api/openapi.json`): null in every body
 * field, NUL and unpaired surrogates in every string field, out-of-range numbers in every numeric parameter, malformed
 * path segments, JSON nested too deep, bodies with too many values and bodies too large. Each request holds at least one hostile value,
 * so no request is a valid write: a write that succeeds is itself a finding. A read may answer 2xx where the hostile
 * value is harmless (a path segment that decodes to U+FFFD finds nothing).
 */
import { randomUUID } from "node:crypto";

type Schema = {
  type?: string;
  format?: string;
  enum?: unknown[];
  minimum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  minItems?: number;
  default?: unknown;
  items?: Schema;
  properties?: Record<string, Schema>;
};

interface Parameter {
  name: string;
  in: "path" | "query";
  schema: Schema;
}

interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
}

export interface HostileRequest {
  operation: string;
  /** What is hostile about it, e.g. `body shippingAddress.name: NUL`. */
  variant: string;
  method: string;
  /** Path and query, already encoded. */
  url: string;
  contentType?: string;
  body?: string;
}

/** A JSON number too large for a double: JSON.parse makes it Infinity. Spliced in as raw text. */
const INFINITE = "1e999";
const INFINITE_MARKER = "\u0001infinite\u0001";

/** Out-of-range numbers as a query or path string, and as a JSON number. */
const HOSTILE_NUMBER_TEXT = ["99999999999999999999", "1e+23", "-1e+23", INFINITE, "NaN"];
const HOSTILE_NUMBERS: unknown[] = [1e23, -1e23, 1e20, INFINITE_MARKER, 0.5];
/** Text PostgreSQL cannot store, and path segments that are not valid percent-encoded UTF-8. */
const HOSTILE_TEXT: [string, string][] = [
  ["NUL", "fuzz\u0000"],
  ["high surrogate", "fuzz\uD800"],
  ["low surrogate", "\uDC00fuzz"],
];
const HOSTILE_SEGMENTS: [string, string][] = [
  ["NUL", "%00"],
  ["encoded surrogate", "%ED%A0%80"],
  ["malformed escape", "%E0%A4%A"],
  ["number out of range", "1e%2B23"],
  ["huge integer", "99999999999999999999"],
];

/** A plausible value of the schema, so that one hostile field is what the request is refused for. */
export function sample(schema: Schema): unknown {
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case "string":
      if (schema.format === "uuid") return randomUUID();
      if (schema.format === "email") return "fuzz@example.com";
      if (schema.format === "uri") return "https://example.com/fuzz";
      return "fuzz".padEnd(schema.minLength ?? 1, "z");
    case "integer":
    case "number":
      return Math.max(1, schema.minimum ?? 1);
    case "boolean":
      return true;
    case "array":
      return Array.from({ length: Math.max(1, schema.minItems ?? 1) }, () => sample(schema.items ?? {}));
    case "object":
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, prop]) => [name, sample(prop)]));
    default:
      return "fuzz";
  }
}

type Leaf = { path: (string | number)[]; kind: "string" | "number" };

/** Every string and number in a sampled body, with where it is. */
function leaves(value: unknown, path: (string | number)[] = []): Leaf[] {
  if (typeof value === "string") return [{ path, kind: "string" }];
  if (typeof value === "number") return [{ path, kind: "number" }];
  if (Array.isArray(value)) return value.flatMap((item, index) => leaves(item, [...path, index]));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([key, child]) => leaves(child, [...path, key]));
  }
  return [];
}

/**
 * Where a null is hostile in a body sampled from `schema`: every field, nested ones included, but those with a default
 * (a null there stands for "not given", and takes the default).
 */
function nullTargets(schema: Schema, value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => [
      [...path, index],
      ...nullTargets(schema.items ?? {}, item, [...path, index]),
    ]);
  }
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([key, child]) => {
      const field = schema.properties?.[key] ?? {};
      return [...(field.default === undefined ? [[...path, key]] : []), ...nullTargets(field, child, [...path, key])];
    });
  }
  return [];
}

function withValue(body: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(body) as Record<string | number, unknown>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  parent[path[path.length - 1]] = value;
  return copy;
}

/** JSON text; the Infinity marker becomes a number literal no double can hold. */
function serialize(body: unknown): string {
  return JSON.stringify(body).split(JSON.stringify(INFINITE_MARKER)).join(INFINITE);
}

function formBody(body: Record<string, unknown>): string {
  return Object.entries(body)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeText(String(value))}`)
    .join("&");
}

/** Percent-encodes text, lone surrogates included (encodeURIComponent throws on them): as the CESU-8 bytes a client would send. */
function encodeText(text: string): string {
  return [...text]
    .map((char) => {
      const code = char.charCodeAt(0);
      if (char.length === 1 && code >= 0xd800 && code <= 0xdfff) {
        return [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
          .map((byte) => `%${byte.toString(16).toUpperCase()}`)
          .join("");
      }
      return encodeURIComponent(char);
    })
    .join("");
}

/** Every hostile request for every operation of the document. */
export function hostileRequests(doc: OpenApiDocument): HostileRequest[] {
  const requests: HostileRequest[] = [];
  for (const [template, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const parameters = op.parameters ?? [];
      const pathParams = parameters.filter((param) => param.in === "path");
      const queryParams = parameters.filter((param) => param.in === "query");
      const pathWith = (name?: string, segment?: string) =>
        template.replace(/\{(\w+)\}/g, (_, param: string) =>
          param === name
            ? segment!
            : encodeURIComponent(String(sample(pathParams.find((p) => p.name === param)!.schema))),
        );
      const add = (variant: string, url: string, body?: string, contentType?: string) =>
        requests.push({ operation: op.operationId, variant, method: method.toUpperCase(), url, body, contentType });

      // Every operation, even one that takes no parameters, gets hostile text in a query parameter it does not declare.
      add("query (undeclared) fuzz: NUL", `${pathWith()}?fuzz=%00`);
      for (const param of pathParams) {
        for (const [what, segment] of HOSTILE_SEGMENTS)
          add(`path ${param.name}: ${what}`, pathWith(param.name, segment));
      }
      for (const param of queryParams) {
        const isNumber = param.schema.type === "integer" || param.schema.type === "number";
        // A URL cannot carry an unpaired surrogate (its bytes are not UTF-8 and decode to U+FFFD), so NUL only.
        const values: [string, string][] = [
          ["NUL", "fuzz%00"],
          ...(isNumber ? HOSTILE_NUMBER_TEXT.map((text): [string, string] => [text, encodeURIComponent(text)]) : []),
        ];
        for (const [what, value] of values) add(`query ${param.name}: ${what}`, `${pathWith()}?${param.name}=${value}`);
      }

      const content = op.requestBody?.content ?? {};
      const [contentType] = Object.keys(content);
      if (!contentType) continue;
      const valid = sample(content[contentType].schema) as Record<string, unknown>;
      if (contentType === "application/x-www-form-urlencoded") {
        for (const name of Object.keys(valid)) {
          for (const [what, text] of HOSTILE_TEXT) {
            add(`form ${name}: ${what}`, pathWith(), formBody({ ...valid, [name]: text }), contentType);
          }
        }
        continue;
      }
      // A null where a value goes: in every field, nested ones included, whether the field is required or not.
      for (const path of nullTargets(content[contentType].schema, valid)) {
        add(`body ${path.join(".")}: null`, pathWith(), serialize(withValue(valid, path, null)), contentType);
      }
      for (const leaf of leaves(valid)) {
        const where = `body ${leaf.path.join(".")}`;
        for (const [what, text] of HOSTILE_TEXT)
          add(`${where}: ${what}`, pathWith(), serialize(withValue(valid, leaf.path, text)), contentType);
        if (leaf.kind === "number") {
          for (const number of HOSTILE_NUMBERS) {
            add(`${where}: ${String(number)}`, pathWith(), serialize(withValue(valid, leaf.path, number)), contentType);
          }
        }
      }
      const firstField = Object.keys(valid)[0] ?? "field";
      // One key and its value hostile; deep nesting; many values; a body over the size limit.
      add("body key: NUL", pathWith(), serialize({ ...valid, "fuzz\u0000key": 1 }), contentType);
      add(
        "body: nested 10,000 deep",
        pathWith(),
        `{"${firstField}":${"[".repeat(10_000)}${"]".repeat(10_000)}}`,
        contentType,
      );
      add(
        "body: 100,000 values",
        pathWith(),
        serialize({ ...valid, [firstField]: new Array(100_000).fill(0) }),
        contentType,
      );
      add("body: 2 MB", pathWith(), serialize({ ...valid, [firstField]: "x".repeat(2_000_000) }), contentType);
    }
  }
  return requests;
}
