/**
 * The orders service's rows (orders and their lines) as its database holds them, and as the contracts
 * (contracts/orders.ts) give them to clients.
 */
import type { Order, OrderStatus, ShippingAddress } from "../contracts/orders";

export interface OrderRow {
  id: string;
  customer_id: string;
  status: OrderStatus;
  status_reason: string | null;
  currency: string;
  total_amount: string;
  shipping_address: ShippingAddress;
  payment_method: string;
  request_hash: string | null;
  request_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface LineRow {
  order_id: string;
  product_id: string;
  sku: string;
  name: string;
  quantity: number;
  unit_price_amount: string;
}

export function toOrder(row: OrderRow, lines: LineRow[]): Order {
  return {
    id: row.id,
    customerId: row.customer_id,
    status: row.status,
    statusReason: row.status_reason,
    total: { amount: Number(row.total_amount), currency: row.currency },
    lines: lines.map((line) => ({
      productId: line.product_id,
      sku: line.sku,
      name: line.name,
      quantity: line.quantity,
      unitPrice: { amount: Number(line.unit_price_amount), currency: row.currency },
    })),
    shippingAddress: row.shipping_address,
    paymentMethod: row.payment_method,
    requestId: row.request_id,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
