/**
 * Context meta the gateway and actions share: keys moleculer-web reads to shape the HTTP response (`$...`), and the
 * request headers the gateway hands to actions (`ifMatch`, `idempotencyKey`).
 */
export interface GatewayMeta {
  /** `If-Match`: the entity version the client last saw (optimistic concurrency). */
  ifMatch?: string;
  /** `Idempotency-Key`: the client's key that makes a retried create return the first result. */
  idempotencyKey?: string;
  $statusCode?: number;
  $statusMessage?: string;
  $responseType?: string;
  $responseHeaders?: Record<string, string>;
  $location?: string;
}
