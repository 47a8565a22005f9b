/**
 * Access tokens whose signature the gateway has verified, so each token's ES256 check (the largest cost of an
 * authenticated request) runs once per gateway instead of on every request. An entry holds what verification
 * established: the claims and the key that signed them. It lasts until the token's own `exp`, and only while that key
 * is still published (a key taken out of the JWKS ends its tokens' entries). Revocation and roles are not cached here:
 * the gateway checks them on every request against its in-memory revocation list and role table, which the auth
 * service's events keep current, so a disabled user or a changed role takes effect as fast as without the cache.
 * Keyed by the token's SHA-256 (an entry does not hold the bearer secret) and bounded: past `maxEntries` the oldest
 * entry goes.
 */
import { createHash } from "node:crypto";
import type { VerifiedClaims } from "./signing-keys";

export interface VerifiedToken {
  kid: string;
  claims: VerifiedClaims;
}

export class VerifiedTokenCache {
  private readonly entries = new Map<string, VerifiedToken>();

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The token's verification, while it has not expired. */
  get(token: string, now = Date.now()): VerifiedToken | undefined {
    const key = keyOf(token);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.claims.exp * 1000 <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(token: string, verified: VerifiedToken): void {
    if (this.maxEntries <= 0) return;
    const key = keyOf(token);
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      // Maps keep insertion order: the first key is the oldest entry.
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, verified);
  }

  forget(token: string): void {
    this.entries.delete(keyOf(token));
  }
}

const keyOf = (token: string) => createHash("sha256").update(token).digest("base64url");
