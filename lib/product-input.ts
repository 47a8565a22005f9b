/**
 * What the catalog's actions take and answer beyond their rows: the sortable fields, the writable fields and their
 * rules, the version an update is based on (`If-Match` or the body's `version`) and the ETag that answers it.
 */
import type { Context } from "moleculer";
import type { Product } from "../contracts/products";
import { ConflictError, PreconditionRequiredError, invalidFields } from "./errors";
import type { GatewayMeta } from "./gateway-meta";
import type { ParamRuleObject, ParamsOf } from "./params";

export const MAX_PAGE_SIZE = 100;

/** Sortable fields as clients name them, mapped to model attributes; anything else is rejected by validation. */
export const SORT_FIELDS = {
  name: "name",
  sku: "sku",
  price: "priceAmount",
  stock: "stock",
  createdAt: "createdAt",
  updatedAt: "updatedAt",
} as const;
export type SortField = keyof typeof SORT_FIELDS;
/** What `sort` takes: a field, ascending, or `-field`, descending (a literal union, so `sort` is typed as one). */
export const SORT_VALUES = (Object.keys(SORT_FIELDS) as SortField[]).flatMap((field) => [field, `-${field}` as const]);

/** The writable fields and their rules; create and PUT require them (or their defaults), PATCH takes any of them. */
export const PRODUCT_FIELDS = {
  sku: { type: "string", trim: true, pattern: /^[A-Za-z0-9._-]{1,64}$/ },
  name: { type: "string", trim: true, min: 1, max: 200 },
  description: { type: "string", max: 5000, default: "" },
  price: {
    type: "object",
    strict: true,
    props: {
      amount: { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER },
      currency: { type: "string", pattern: /^[A-Z]{3}$/ },
    },
  },
  stock: { type: "number", integer: true, min: 0, max: 2_147_483_647, default: 0 },
  active: { type: "boolean", default: true },
} as const;

/** A writable field's rule as PATCH takes it: optional, and without its default (which would overwrite the field). */
function optionalWithoutDefault<Rule extends ParamRuleObject>(rule: Rule): Omit<Rule, "default"> & { optional: true } {
  const { default: _default, ...withoutDefault } = rule;
  return { ...withoutDefault, optional: true };
}

/**
 * The writable fields as PATCH takes them. Key by key, not mapped over `PRODUCT_FIELDS`, so the type keeps the keys.
 */
export const OPTIONAL_PRODUCT_FIELDS = {
  sku: optionalWithoutDefault(PRODUCT_FIELDS.sku),
  name: optionalWithoutDefault(PRODUCT_FIELDS.name),
  description: optionalWithoutDefault(PRODUCT_FIELDS.description),
  price: optionalWithoutDefault(PRODUCT_FIELDS.price),
  stock: optionalWithoutDefault(PRODUCT_FIELDS.stock),
  active: optionalWithoutDefault(PRODUCT_FIELDS.active),
};

export const VERSION = { type: "number", integer: true, min: 0, convert: true, optional: true } as const;

/** The version an update is based on: `If-Match` (`"3"` or `3`) or the body's `version`; 428 when neither is given. */
export function expectedVersion(ctx: Context<ParamsOf<{ version: typeof VERSION }>, GatewayMeta>): number {
  const header = ctx.meta.ifMatch?.replace(/^W\//, "").replace(/"/g, "").trim();
  const fromHeader = header !== undefined && header !== "" ? Number(header) : undefined;
  if (fromHeader !== undefined && !Number.isInteger(fromHeader)) {
    throw invalidFields("If-Match must carry the version number", [
      { field: "If-Match", message: "not a version number", type: "version", actual: ctx.meta.ifMatch },
    ]);
  }
  const version = fromHeader ?? ctx.params.version;
  if (version === undefined) {
    throw new PreconditionRequiredError("Send the version you are updating, as If-Match or a version field");
  }
  return version;
}

/** Moleculer-web answers with these headers: the entity's version as its ETag. */
export function withETag(ctx: Context<unknown, GatewayMeta>, product: Product): Product {
  ctx.meta.$responseHeaders = { ...ctx.meta.$responseHeaders, ETag: `"${product.version}"` };
  return product;
}

export const duplicateSku = (sku: string) =>
  new ConflictError(`A product with sku ${sku} exists`, "DUPLICATE", { field: "sku", value: sku });
