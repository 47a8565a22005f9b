/** A shipment as the shipping service answers it: to the order saga, tests and benches. */

export type ShipmentStatus = "CREATED" | "CANCELLED" | "VOIDED";

export interface Shipment {
  id: string;
  shipmentKey: string;
  orderId: string | null;
  country: string | null;
  status: ShipmentStatus;
  createdAt: string;
  cancelledAt: string | null;
}
