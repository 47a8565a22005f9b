/**
 * The one retry schedule of the platform (deliveries, saga steps, reconnects, notifications, the outbox): the first
 * retry after `firstMs`, each next one twice as late, never later than `maxMs`.
 */
export function backoff(attempt: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, attempt - 1));
}
