/**
 * The first page of products, with its total, in the one statement the products service runs for
 * `GET /api/products` (default sort): the `pg` baselines of bench/data.ts and bench/targets.ts send it as it is.
 * `$1` is the page size.
 */
export const PRODUCT_PAGE_SQL = `SELECT id, sku, name, description, price_amount, currency, stock, active, version,
  created_at, updated_at, count(*) OVER () AS full_count
  FROM products ORDER BY name ASC, id ASC LIMIT $1 OFFSET 0`;
