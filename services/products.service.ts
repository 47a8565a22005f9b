/**
 * products (Service 1, DB 1): the product catalog in its own PostgreSQL database. A stock change publishes
 * `product.stockChanged` through the outbox.
 *
 * Stock is reserved by the order saga (`reserve`, then `release` as its compensation or `commitReservation` when the
 * order completes), once per reservation key: mixins/products-reservations.mixin.ts. The catalog's actions are here;
 * its rows and inputs are lib/product-rows.ts and lib/product-input.ts.
 */
import type { Context, ServiceSchema } from "moleculer";
import { DataTypes, Op, UniqueConstraintError, type WhereOptions } from "sequelize";
import { escapeLike } from "../lib/database";
import type { AuditLocals } from "../lib/audit";
import { ConflictError, NotFoundError } from "../lib/errors";
import type { GatewayMeta } from "../lib/gateway-meta";
import productMigrations from "../migrations/products";
import type { DbMethods } from "../mixins/db.mixin";
import { entityMixin, type EntityServiceThis, type EntitySettings } from "../mixins/entity.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";
import { productsReservationsMixin } from "../mixins/products-reservations.mixin";
import { createEnvelope } from "../lib/events";
import {
  MAX_PAGE_SIZE,
  OPTIONAL_PRODUCT_FIELDS,
  PRODUCT_FIELDS,
  SORT_FIELDS,
  SORT_VALUES,
  VERSION,
  duplicateSku,
  expectedVersion,
  withETag,
  type SortField,
} from "../lib/product-input";
import { productOf, toProduct, type ProductRow } from "../lib/product-rows";
import { pageParams } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import type { Product, ProductPage } from "../contracts/products";

const listParams = paramsSchema({
  ...pageParams(MAX_PAGE_SIZE, 20),
  sort: { type: "enum", values: SORT_VALUES, optional: true },
  search: { type: "string", trim: true, max: 100, optional: true },
  active: { type: "boolean", convert: true, optional: true },
  currency: { type: "string", pattern: /^[A-Z]{3}$/, optional: true },
  minPrice: { type: "number", integer: true, min: 0, convert: true, optional: true },
  maxPrice: { type: "number", integer: true, min: 0, convert: true, optional: true },
  inStock: { type: "boolean", convert: true, optional: true },
  $$strict: true,
});
const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });
const getManyParams = paramsSchema({
  ids: { type: "array", min: 1, max: 100, unique: true, items: { type: "uuid" } },
  $$strict: true,
});
const createParams = paramsSchema({ ...PRODUCT_FIELDS, $$strict: true });
/** PUT: every field (or its default). */
const replaceParams = paramsSchema({ id: { type: "uuid" }, ...PRODUCT_FIELDS, version: VERSION, $$strict: true });
/** PATCH: any of the fields. */
const updateParams = paramsSchema({
  id: { type: "uuid" },
  ...OPTIONAL_PRODUCT_FIELDS,
  version: VERSION,
  $$strict: true,
});
const removeParams = paramsSchema({ id: { type: "uuid" }, version: VERSION, $$strict: true });

/** What an update changes, from PUT (every field) or PATCH (some): the fields of a PUT are a PATCH's, all given. */
type UpdateProductParams = ParamsOf<typeof updateParams>;

interface ProductsMethods {
  updateProduct(ctx: Context<UpdateProductParams, GatewayMeta>): Promise<Product>;
  explainMissedWrite(id: string): Promise<never>;
}

const ProductsService: ServiceSchema<EntitySettings, DbMethods & ProductsMethods & OutboxMethods, EntityServiceThis> = {
  name: "products",
  /** Merged the last first: the reservations' actions (no REST routes) come before this schema's catalog. */
  mixins: [
    outboxMixin(),
    entityMixin({
      service: "products",
      migrations: productMigrations,
      model: {
        name: "product",
        define: {
          id: { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 },
          sku: { type: DataTypes.STRING(64), allowNull: false },
          name: { type: DataTypes.STRING(200), allowNull: false },
          description: { type: DataTypes.TEXT, allowNull: false, defaultValue: "" },
          priceAmount: { type: DataTypes.BIGINT, allowNull: false },
          currency: { type: DataTypes.CHAR(3), allowNull: false },
          stock: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
          active: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
        },
        options: { tableName: "products", underscored: true, timestamps: true, version: true },
      },
    }),
    productsReservationsMixin(),
  ],

  actions: {
    /**
     * A page of products, sorted on a whitelisted field, filtered by a text search over sku, name and description and
     * by `active`, `currency`, price range and `inStock`. Public.
     */
    list: {
      rest: "GET /",
      list: "page",
      permissions: "public",
      params: listParams,
      async handler(ctx: Context<ParamsOf<typeof listParams>>): Promise<ProductPage> {
        const { page, pageSize, sort = "name", search, active, currency, minPrice, maxPrice, inStock } = ctx.params;
        const direction = sort.startsWith("-") ? "DESC" : "ASC";
        // One of SORT_VALUES (validated): without its `-`, a field.
        const field = SORT_FIELDS[sort.replace(/^-/, "") as SortField];
        const conditions: WhereOptions[] = [];
        if (search) {
          conditions.push({
            [Op.or]: ["sku", "name", "description"].map((column) => ({
              [column]: { [Op.iLike]: `%${escapeLike(search)}%` },
            })),
          });
        }
        if (active !== undefined) conditions.push({ active });
        if (currency) conditions.push({ currency });
        if (minPrice !== undefined) conditions.push({ priceAmount: { [Op.gte]: minPrice } });
        if (maxPrice !== undefined) conditions.push({ priceAmount: { [Op.lte]: maxPrice } });
        if (inStock !== undefined) conditions.push({ stock: inStock ? { [Op.gt]: 0 } : 0 });
        const where: WhereOptions = { [Op.and]: conditions };
        // The page and the total in one statement: the window's count is taken before LIMIT applies.
        const rows = (await this.model.findAll({
          raw: true,
          where,
          attributes: { include: [[this.sequelize.literal("count(*) OVER ()"), "fullCount"]] },
          order: [
            [field, direction],
            ["id", "ASC"],
          ],
          limit: pageSize,
          offset: (page - 1) * pageSize,
        })) as unknown as (ProductRow & { fullCount: string })[];
        // A page past the end has no row to carry the total: only then is it counted apart.
        const total = rows.length > 0 ? Number(rows[0].fullCount) : page > 1 ? await this.model.count({ where }) : 0;
        return { rows: rows.map(productOf), total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
      },
    },

    /** One product by id, its version as the ETag; 404 when there is none. Public. */
    get: {
      rest: "GET /:id",
      permissions: "public",
      params: idParams,
      async handler(ctx: Context<ParamsOf<typeof idParams>, GatewayMeta>): Promise<Product> {
        const found = await this.model.findByPk(ctx.params.id);
        if (!found) throw new NotFoundError("Product", ctx.params.id);
        return withETag(ctx, toProduct(found));
      },
    },

    /**
     * The products of a set of ids, in one statement (those that exist; an unknown id is left out). System only: the
     * order service prices all lines of an order with one call.
     */
    getMany: {
      params: getManyParams,
      async handler(ctx: Context<ParamsOf<typeof getManyParams>>): Promise<Product[]> {
        const found = await this.model.findAll({ raw: true, where: { id: { [Op.in]: ctx.params.ids } } });
        return (found as unknown as ProductRow[]).map(productOf);
      },
    },

    /** Adds a product; 409 `DUPLICATE` when the sku is taken. `products:write`. */
    create: {
      audit: { entity: "product" },
      rest: "POST /",
      status: 201,
      permissions: ["products:write"],
      params: createParams,
      async handler(ctx: Context<ParamsOf<typeof createParams>, GatewayMeta>): Promise<Product> {
        const { price, ...fields } = ctx.params;
        try {
          const created = await this.model.create({ ...fields, priceAmount: price.amount, currency: price.currency });
          const product = toProduct(created);
          ctx.meta.$location = `/api/products/${product.id}`;
          return withETag(ctx, product);
        } catch (err) {
          if (err instanceof UniqueConstraintError) throw duplicateSku(fields.sku);
          throw err;
        }
      },
    },

    /** Replaces a product's fields, based on the version the client saw (409 `STALE_VERSION` if it moved). `products:write`. */
    replace: {
      audit: { entity: "product" },
      rest: "PUT /:id",
      permissions: ["products:write"],
      params: replaceParams,
      handler(ctx: Context<ParamsOf<typeof replaceParams>, GatewayMeta>): Promise<Product> {
        return this.updateProduct(ctx);
      },
    },

    /** Changes some of a product's fields, based on the version the client saw. `products:write`. */
    update: {
      audit: { entity: "product" },
      rest: "PATCH /:id",
      permissions: ["products:write"],
      params: updateParams,
      handler(ctx: Context<ParamsOf<typeof updateParams>, GatewayMeta>): Promise<Product> {
        return this.updateProduct(ctx);
      },
    },

    /** Deletes a product; with If-Match or `version`, only if it is still that version. 204. `products:write`. */
    remove: {
      audit: { entity: "product" },
      rest: "DELETE /:id",
      status: 204,
      permissions: ["products:write"],
      params: removeParams,
      async handler(ctx: Context<ParamsOf<typeof removeParams>, GatewayMeta>): Promise<void> {
        const conditional = ctx.meta.ifMatch !== undefined || ctx.params.version !== undefined;
        const where = conditional ? { id: ctx.params.id, version: expectedVersion(ctx) } : { id: ctx.params.id };
        const deleted = await this.sequelize.transaction(async (transaction) => {
          const before = await this.model.findOne({ where, transaction, lock: transaction.LOCK.UPDATE });
          if (!before) return 0;
          (ctx.locals as AuditLocals).auditBefore = toProduct(before);
          return this.model.destroy({ where, transaction });
        });
        if (deleted === 0) await this.explainMissedWrite(ctx.params.id);
      },
    },
  },

  methods: {
    /** One conditional UPDATE: it changes the row only if its version is the expected one, and bumps the version. */
    async updateProduct(ctx: Context<UpdateProductParams, GatewayMeta>): Promise<Product> {
      const version = expectedVersion(ctx);
      const { id, price, version: _bodyVersion, ...fields } = ctx.params;
      const values = {
        ...fields,
        ...(price ? { priceAmount: price.amount, currency: price.currency } : {}),
        version: this.sequelize.literal("version + 1"),
      };
      try {
        const updated = await this.sequelize.transaction(async (transaction) => {
          // The row at the expected version is what a successful conditional UPDATE changes (for the audit trail).
          const before = await this.model.findOne({ where: { id, version }, transaction });
          const [count, rows] = await this.model.update(values, {
            where: { id, version },
            returning: true,
            transaction,
          });
          if (count === 0) return undefined;
          const previous = before ? toProduct(before) : undefined;
          if (previous) (ctx.locals as AuditLocals).auditBefore = previous;
          const product = toProduct(rows[0]);
          // Committed with the change or not at all: exec's rules (low stock) react to it. Only a change of the stock
          // is one: an edit that sends the stock it already had (a form sending every field) would re-fire them.
          if (fields.stock !== undefined && fields.stock !== previous?.stock) {
            const { sku, name, stock } = product;
            await this.enqueueEvent(
              transaction,
              createEnvelope(
                "product.stockChanged",
                { product: { id, sku, name, stock } },
                { source: "products", correlationId: ctx.requestID ?? id },
              ),
            );
          }
          return product;
        });
        if (!updated) return this.explainMissedWrite(id);
        return withETag(ctx, updated);
      } catch (err) {
        if (err instanceof UniqueConstraintError) throw duplicateSku(fields.sku ?? "");
        throw err;
      }
    },

    /** After a conditional write changed nothing: 404 if the product is gone, else 409 with its current version. */
    async explainMissedWrite(id: string): Promise<never> {
      const current = await this.model.findByPk(id);
      if (!current) throw new NotFoundError("Product", id);
      const currentVersion = (current.get({ plain: true }) as ProductRow).version;
      throw new ConflictError("The product changed since you read it", "STALE_VERSION", { id, currentVersion });
    },
  },
};

export default ProductsService;
