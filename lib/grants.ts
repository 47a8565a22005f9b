/**
 * Whether held permissions grant a required one. No imports: the gateway, every node and the web console (which
 * shows only what a user may do) use this same rule.
 */

/** `*` grants everything; a trailing `:*` grants the prefix and everything below it (`dlq:*` grants `dlq:replay`). */
export function grants(held: string, required: string): boolean {
  if (held === "*" || held === required) return true;
  if (!held.endsWith(":*")) return false;
  const prefix = held.slice(0, -1);
  return required.startsWith(prefix) || required === held.slice(0, -2);
}

export function hasPermission(held: readonly string[], required: string): boolean {
  return held.some((permission) => grants(permission, required));
}
