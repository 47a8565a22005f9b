/** Products and their stock reservations as the catalogue answers them: to orders, the console, tests and benches. */
import type { Page } from "../lib/paging";
import type { ReservationLine, ReservationStatus } from "../lib/stock-reservation";

export interface Price {
  /** Integer amount in the currency's minor unit (cents). */
  amount: number;
  /** ISO 4217 code. */
  currency: string;
}

export interface Product {
  id: string;
  sku: string;
  name: string;
  description: string;
  price: Price;
  stock: number;
  active: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export type ProductPage = Page<Product>;

export interface StockReservation {
  /** The saga step key it was made under: `<sagaId>:stock`. */
  key: string;
  orderId: string | null;
  /** One line per product, in product id order. */
  lines: ReservationLine[];
  status: ReservationStatus;
  reason: string | null;
  createdAt: string;
  updatedAt: string;
}
