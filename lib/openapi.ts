/**
 * Builds the OpenAPI 3.1 document from what the gateway really serves: its routes (method, path, action) and each
 * action's fastest-validator `params` and `permissions`. Nothing is written by hand, so the document cannot drift.
 */
import type { ListShape } from "./paging";
import type { PermissionDeclaration } from "./permissions";

export interface RouteInfo {
  method: string;
  /** moleculer-web style, e.g. `/api/products/:id`. */
  path: string;
  action: string;
  params?: Record<string, unknown>;
  permissions?: PermissionDeclaration;
  /** The action's declared success status (default 200). */
  status?: number;
  /** What the route's body parser takes. */
  bodyType?: "json" | "form";
  /** The list shape the action answers with, if it answers a list. */
  list?: ListShape;
}

type JsonSchema = Record<string, unknown>;
type Rule = Record<string, unknown> & { type?: string };

/** `"string|optional|min:3"` shorthand or an object rule, as one object. */
function normalize(rule: unknown): Rule {
  if (typeof rule === "string") {
    const [type, ...flags] = rule.split("|").map((part) => part.trim());
    const normalized: Rule = { type };
    for (const flag of flags) {
      const [key, value] = flag.split(":");
      normalized[key] = value === undefined ? true : Number.isNaN(Number(value)) ? value : Number(value);
    }
    return normalized;
  }
  if (Array.isArray(rule)) return { type: "any" };
  return (rule ?? { type: "any" }) as Rule;
}

const isOptional = (rule: Rule) => rule.optional === true || rule.default !== undefined;

/** fastest-validator rule → JSON Schema (the subset this project uses; anything else is left open). */
export function ruleToSchema(raw: unknown): JsonSchema {
  const rule = normalize(raw);
  const schema: JsonSchema = {};
  if (rule.default !== undefined && typeof rule.default !== "function") schema.default = rule.default;
  switch (rule.type) {
    case "string":
    case "email":
    case "uuid":
    case "url":
      schema.type = "string";
      if (rule.type !== "string") schema.format = rule.type === "url" ? "uri" : rule.type;
      if (typeof rule.min === "number") schema.minLength = rule.min;
      if (typeof rule.max === "number") schema.maxLength = rule.max;
      if (rule.pattern instanceof RegExp) schema.pattern = rule.pattern.source;
      else if (typeof rule.pattern === "string") schema.pattern = rule.pattern;
      if (Array.isArray(rule.enum)) schema.enum = rule.enum;
      break;
    case "number":
      schema.type = rule.integer ? "integer" : "number";
      if (typeof rule.min === "number") schema.minimum = rule.min;
      if (typeof rule.max === "number") schema.maximum = rule.max;
      if (rule.positive) schema.exclusiveMinimum = 0;
      break;
    case "boolean":
      schema.type = "boolean";
      break;
    case "enum":
      schema.enum = rule.values;
      break;
    case "array":
      schema.type = "array";
      if (rule.items !== undefined) schema.items = ruleToSchema(rule.items);
      if (rule.unique) schema.uniqueItems = true;
      if (typeof rule.min === "number") schema.minItems = rule.min;
      if (typeof rule.max === "number") schema.maxItems = rule.max;
      break;
    case "object":
      Object.assign(schema, objectSchema((rule.props ?? rule.properties ?? {}) as Record<string, unknown>));
      if (rule.strict === true) schema.additionalProperties = false;
      break;
    default:
      break;
  }
  return schema;
}

function objectSchema(props: Record<string, unknown>): JsonSchema {
  const entries = Object.entries(props).filter(([name]) => !name.startsWith("$$"));
  const required = entries.filter(([, rule]) => !isOptional(normalize(rule))).map(([name]) => name);
  return {
    type: "object",
    properties: Object.fromEntries(entries.map(([name, rule]) => [name, ruleToSchema(rule)])),
    ...(required.length > 0 ? { required } : {}),
    ...(props.$$strict === true ? { additionalProperties: false } : {}),
  };
}

const ERROR_SCHEMA = {
  type: "object",
  description: "Every error: a machine-readable `type`, and in `data` the details (for 422, the offending fields).",
  required: ["name", "message", "code", "type"],
  properties: {
    name: { type: "string" },
    message: { type: "string" },
    code: { type: "integer" },
    type: { type: "string", examples: ["VALIDATION_ERROR", "NOT_FOUND", "FORBIDDEN", "MALFORMED_JSON"] },
    data: {},
  },
};

/** The two list shapes of lib/paging.ts; `rows` holds the action's items. */
const PAGE_SCHEMA = {
  type: "object",
  description: "Offset paging: one page of the rows (`page` from 1, `pageSize`) and the count of every match.",
  required: ["rows", "total", "page", "pageSize", "totalPages"],
  properties: {
    rows: { type: "array", items: {} },
    total: { type: "integer", minimum: 0 },
    page: { type: "integer", minimum: 1 },
    pageSize: { type: "integer", minimum: 1 },
    totalPages: { type: "integer", minimum: 0 },
  },
  additionalProperties: false,
};
const CURSOR_PAGE_SCHEMA = {
  type: "object",
  description:
    "Cursor paging of an append-only stream: the rows after `after`, in order; pass `nextCursor` as `after` to read " +
    "on (`hasMore`: more are there already; otherwise poll later).",
  required: ["rows", "pageSize", "nextCursor", "hasMore"],
  properties: {
    rows: { type: "array", items: {} },
    pageSize: { type: "integer", minimum: 1 },
    nextCursor: { type: "string" },
    hasMore: { type: "boolean" },
  },
  additionalProperties: false,
};
const LIST_SCHEMAS: Record<ListShape, string> = { page: "Page", cursor: "CursorPage" };

function operation(route: RouteInfo): JsonSchema {
  const params = route.params ?? {};
  const pathNames = [...route.path.matchAll(/:(\w+)/g)].map((match) => match[1]);
  const hasBody = ["POST", "PUT", "PATCH"].includes(route.method);
  const parameters = pathNames.map((name) => ({
    name,
    in: "path",
    required: true,
    schema: params[name] ? ruleToSchema(params[name]) : { type: "string" },
  }));
  const rest = Object.fromEntries(Object.entries(params).filter(([name]) => !pathNames.includes(name)));
  if (!hasBody) {
    for (const [name, rule] of Object.entries(rest)) {
      if (name.startsWith("$$")) continue;
      parameters.push({ name, in: "query", required: !isOptional(normalize(rule)), schema: ruleToSchema(rule) });
    }
  }
  const permissions = route.permissions;
  const isPublic = permissions === "public";
  const status = route.status ?? 200;
  const scopes = Array.isArray(permissions) ? [...permissions] : [];
  const errors = (codes: number[]) =>
    Object.fromEntries(
      codes.map((code) => [String(code), { $ref: `#/components/responses/Error${code === 422 ? "Validation" : ""}` }]),
    );
  return {
    operationId: route.action,
    summary: route.action,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(hasBody
      ? {
          requestBody: {
            required: true,
            content: {
              [route.bodyType === "form" ? "application/x-www-form-urlencoded" : "application/json"]: {
                schema: objectSchema(rest),
              },
            },
          },
        }
      : {}),
    responses: {
      [String(status)]:
        status === 204
          ? { description: "Success, no content" }
          : {
              description: route.list ? `Success: a ${LIST_SCHEMAS[route.list]}` : "Success",
              content: {
                "application/json": {
                  schema: route.list ? { $ref: `#/components/schemas/${LIST_SCHEMAS[route.list]}` } : {},
                },
              },
            },
      // Every JSON body can be malformed (400), too large (413) or not JSON at all (415).
      ...errors(hasBody && route.bodyType !== "form" ? [400, 413, 415] : []),
      ...errors(isPublic ? [422, 429] : [401, 403, 422, 429]),
      default: { $ref: "#/components/responses/Error" },
    },
    security: isPublic ? [] : [{ bearerAuth: [] }, { clientCredentials: scopes }],
    "x-permissions": permissions ?? "system only",
  };
}

export function buildOpenApi(routes: RouteInfo[], info: { title: string; version: string }): JsonSchema {
  const scopes = [...new Set(routes.flatMap((route) => (Array.isArray(route.permissions) ? route.permissions : [])))];
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of [...routes].sort((a, b) => a.path.localeCompare(b.path))) {
    const path = route.path.replace(/:(\w+)/g, "{$1}");
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: { ...info, description: "Generated from the routes the gateway serves and the actions' parameter schemas." },
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA, Page: PAGE_SCHEMA, CursorPage: CURSOR_PAGE_SCHEMA },
      responses: {
        Error: {
          description: "Error",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
        },
        ErrorValidation: {
          description: "Invalid parameters; `data` lists the offending fields",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
        },
      },
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "Access token from POST /api/auth/login",
        },
        clientCredentials: {
          type: "oauth2",
          flows: {
            clientCredentials: {
              tokenUrl: "/oauth/token",
              scopes: Object.fromEntries(scopes.sort().map((scope) => [scope, `Permission ${scope}`])),
            },
          },
        },
      },
    },
  };
}
