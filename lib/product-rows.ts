/**
 * The products service's rows (products, stock reservations) as its database holds them, and as the contracts
 * (contracts/products.ts) give them to clients.
 */
import type { Model } from "sequelize";
import type { Product, StockReservation } from "../contracts/products";
import type { ReservationLine, ReservationStatus } from "./stock-reservation";

export interface ReservationRow {
  reservation_key: string;
  order_id: string | null;
  lines: ReservationLine[];
  status: ReservationStatus;
  reason: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface StockRow {
  id: string;
  sku: string;
  name: string;
  stock: number;
}

export interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string;
  priceAmount: string | number;
  currency: string;
  stock: number;
  active: boolean;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export function toProduct(model: Model): Product {
  return productOf(model.get({ plain: true }) as ProductRow);
}

/** A product from its row as a `raw` read answers it: reads that only answer rows build no model instances. */
export function productOf(row: ProductRow): Product {
  return {
    id: row.id,
    sku: row.sku,
    name: row.name,
    description: row.description,
    price: { amount: Number(row.priceAmount), currency: row.currency },
    stock: row.stock,
    active: row.active,
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function toReservation(row: ReservationRow): StockReservation {
  return {
    key: row.reservation_key,
    orderId: row.order_id,
    lines: row.lines,
    status: row.status,
    reason: row.reason,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
