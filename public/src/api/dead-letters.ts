/** Dead letters as the console words them; their types are the server's (contracts/dead-letters.ts). */
import type { ErrorRecord } from "../../../contracts/dead-letters";

/** What an error says for a person: its first field's message (a validation error names the field), or its message. */
export function errorText(error: ErrorRecord): string {
  const fields = Array.isArray(error.data) ? (error.data as { message?: string }[]) : [];
  return `${error.type}: ${fields[0]?.message ?? error.message}`;
}
