/**
 * Access tokens refused before they expire. Each user and client has a token generation that its access tokens carry
 * (`gen`); the auth service raises it when a change must end the tokens already out (disabled, roles changed, password
 * changed, client disabled or its secret rotated) and broadcasts `auth.tokens.revoked`. Every gateway keeps the raised
 * generations in memory and refuses an older token on each request. An entry is kept only while a token it refuses
 * can still be valid (the access token's lifetime after the change, plus clock skew), so the list stays small.
 *
 * A generation, not an issued-at time: `iat` has whole seconds, so a token issued in the same second as the change
 * could not be told from one issued just after it; a counter has no such blind spot and no clock to disagree on.
 */

/** What `auth.tokens.revoked` carries and `auth.revocations` lists. */
export interface Revocation {
  /** `user:<id>` or `client:<clientId>` (`subjectOf`). */
  subject: string;
  /** Tokens with a lower `gen` are refused. */
  minGeneration: number;
  /** When the generation was raised (ISO 8601); the entry lapses once tokens from before can no longer be valid. */
  revokedAt: string;
}

export const subjectOf = (type: "user" | "client", id: string) => `${type}:${id}`;

/** Allowance for gateways whose clocks run behind the auth service's. */
const CLOCK_SKEW_MS = 60_000;

export class RevocationList {
  private readonly entries = new Map<string, { minGeneration: number; until: number }>();

  /** @param tokenLifetimeMs the access token's lifetime: no token issued before a change outlives it by more. */
  constructor(private readonly tokenLifetimeMs: number) {}

  /** Records a revocation; a stale one (a lower generation, as after a reordered event) changes nothing. */
  apply(revocation: Revocation, now = Date.now()): void {
    const until = Date.parse(revocation.revokedAt) + this.tokenLifetimeMs + CLOCK_SKEW_MS;
    if (!(until > now)) return;
    const known = this.entries.get(revocation.subject);
    if (known && known.minGeneration >= revocation.minGeneration) return;
    this.entries.set(revocation.subject, { minGeneration: revocation.minGeneration, until });
  }

  /** Whether a token of `subject` with generation `generation` (0 for tokens that carry none) is refused. */
  refuses(subject: string, generation: number, now = Date.now()): boolean {
    const entry = this.entries.get(subject);
    if (!entry) return false;
    if (entry.until <= now) {
      this.entries.delete(subject);
      return false;
    }
    return generation < entry.minGeneration;
  }

  /** Forgets entries whose tokens have all expired. */
  prune(now = Date.now()): void {
    for (const [subject, entry] of this.entries) if (entry.until <= now) this.entries.delete(subject);
  }

  get size(): number {
    return this.entries.size;
  }
}
