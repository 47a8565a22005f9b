/**
 * The shipping service's shipments as its database holds them, and as the contracts (contracts/shipping.ts) give
 * them.
 */
import type { Shipment, ShipmentStatus } from "../contracts/shipping";

export interface ShipmentRow {
  id: string;
  shipment_key: string;
  order_id: string | null;
  country: string | null;
  status: ShipmentStatus;
  created_at: Date;
  cancelled_at: Date | null;
}

export function toShipment(row: ShipmentRow): Shipment {
  return {
    id: row.id,
    shipmentKey: row.shipment_key,
    orderId: row.order_id,
    country: row.country,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    cancelledAt: row.cancelled_at?.toISOString() ?? null,
  };
}
