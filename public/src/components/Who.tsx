import { userIdOf } from "../api/names";

/** An actor (`user:<id>`, `client:<id>`, `system`) by name where one is known; the full id stays in the tooltip. */
export function Who({ actor, names }: { actor: string | null; names: Record<string, string> }) {
  if (!actor) return null;
  const userId = userIdOf(actor);
  const name = userId ? names[userId] : undefined;
  return (
    <span title={actor} className={name ? "" : "font-mono text-xs break-all"}>
      {name ?? actor}
    </span>
  );
}
