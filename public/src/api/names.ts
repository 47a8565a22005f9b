/**
 * Who did something, by name: records name users by id (`user:<id>`, or an audit actor's id); the console asks the
 * API for their display names once per page (`GET /api/auth/users/names`) and shows the id where it has no name.
 */
import { useApi } from "./useApi";

/** The user id of an actor written as `user:<id>`; null for a client, the system, or no one. */
export const userIdOf = (actor: string | null | undefined): string | null =>
  actor?.startsWith("user:") ? actor.slice("user:".length) : null;

/** Display names of these user ids (at most 100), by id; empty until they arrive, or if they cannot be read. */
export function useNames(userIds: (string | null | undefined)[]): Record<string, string> {
  const ids = [...new Set(userIds.filter((id): id is string => !!id))].sort().slice(0, 100);
  const loaded = useApi<Record<string, string>>(ids.length ? `/api/auth/users/names?ids=${ids.join(",")}` : null);
  return loaded.data ?? {};
}
