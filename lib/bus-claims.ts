/**
 * Caller claims: the identity a call or event carries across the bus (`meta.caller`) is signed by the sending node
 * with its role's Ed25519 key and verified by the receiving node (middlewares/bus-identity.middleware.ts). Joining
 * NATS therefore grants nothing: an unsigned, badly signed, expired or out-of-role claim is dropped and the call runs
 * without identity, which the permissions middleware refuses (fail closed).
 *
 * A claim is bound to the packet it travels in (sender node, action or event name, context id, a digest of the
 * params) and expires after `CLAIM_TTL_MS`, so it cannot be moved onto another call. Keys are per role: the edge role
 * (the gateway, which faces the internet) may assert the users and clients it authenticated from their tokens, and
 * the system identity only for the few reads it makes itself; every other role may assert any caller.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import type { Caller } from "../contracts/caller";

/** How long a signed claim is accepted: far longer than a packet takes across NATS, short enough to limit replay. */
export const CLAIM_TTL_MS = 60_000;

/** The role that faces the internet; what it may assert is limited (see `mayAssert`). */
export const EDGE_ROLE = "gateway";

/**
 * The system calls the gateway makes on its own behalf: token verification keys and revocations, the role table, the
 * dashboard's counters, its peers' traffic and event schemas. Reads only; anything else it asserts as the system is
 * dropped. A new system call from the gateway belongs here, or it is refused wherever the gateway runs as its role.
 */
export const EDGE_SYSTEM_ACTIONS: ReadonlySet<string> = new Set([
  "auth.jwks",
  "auth.revocations",
  "auth.rolePermissions",
  "sagas.list",
  "dlq.stats",
  "api.traffic",
  "audit.schemas",
]);

/** Where a claim travels in `meta`, beside the caller it vouches for. */
export const CLAIM_META_KEY = "callerClaim";

export interface WireClaim {
  /** The signing role: which public key verifies it and what it may assert. */
  role: string;
  /** Expiry, ms since the epoch. */
  exp: number;
  /** Ed25519 signature, base64url. */
  sig: string;
}

/** What a claim is bound to: the packet that carries it. */
export interface ClaimBinding {
  /** `REQ` (an action call) or `EVENT`. */
  kind: string;
  /** Node id of the sender as the packet states it. */
  sender: string;
  /** Action or event name. */
  name: string;
  /** Context id of the call or event. */
  id: string;
  params: unknown;
}

export interface SigningKey {
  role: string;
  key: KeyObject;
}

export type Verdict = { valid: true } | { valid: false; reason: string };

// DER header of a PKCS#8 Ed25519 private key; the 32-byte seed follows it.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** An Ed25519 signing key from its 32-byte seed (base64url), the form `BUS_SIGNING_KEY` takes. */
export function signingKeyFromSeed(role: string, seed: string): SigningKey {
  const bytes = Buffer.from(seed, "base64url");
  if (bytes.length !== 32) throw new Error("a bus signing key is a 32-byte Ed25519 seed in base64url");
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, bytes]), format: "der", type: "pkcs8" });
  return { role, key };
}

/** The public key (raw 32 bytes, base64url) that verifies what `seed` signs; what `BUS_TRUSTED_KEYS` lists. */
export function publicKeyOfSeed(seed: string): string {
  const jwk = createPublicKey(signingKeyFromSeed("-", seed).key).export({ format: "jwk" });
  return jwk.x!;
}

/** Public keys by role, from `role:publicKey` entries. */
export function trustedKeys(entries: ReadonlyMap<string, string>): Map<string, KeyObject> {
  return new Map(
    [...entries].map(([role, x]) => [role, createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" })]),
  );
}

function signedBytes(role: string, exp: number, binding: ClaimBinding, caller: Caller): Buffer {
  const digest = createHash("sha256")
    .update(JSON.stringify(binding.params ?? null))
    .digest("base64url");
  const fields = ["aicunet-claim-1", role, exp, binding.kind, binding.sender, binding.name, binding.id, digest, caller];
  return Buffer.from(JSON.stringify(fields));
}

export function signClaim(key: SigningKey, binding: ClaimBinding, caller: Caller, now = Date.now()): WireClaim {
  const exp = now + CLAIM_TTL_MS;
  const sig = sign(null, signedBytes(key.role, exp, binding, caller), key.key).toString("base64url");
  return { role: key.role, exp, sig };
}

/** Whether `role` may vouch for `caller` on this call or event. */
export function mayAssert(role: string, caller: Caller, binding: ClaimBinding): boolean {
  if (role !== EDGE_ROLE || caller.type !== "system") return true;
  return binding.kind === "REQ" && EDGE_SYSTEM_ACTIONS.has(binding.name);
}

export function verifyClaim(
  keys: ReadonlyMap<string, KeyObject>,
  claim: unknown,
  binding: ClaimBinding,
  caller: Caller,
  now = Date.now(),
): Verdict {
  if (!isWireClaim(claim)) return { valid: false, reason: "no signed claim" };
  const key = keys.get(claim.role);
  if (!key) return { valid: false, reason: `no trusted key for role ${claim.role}` };
  if (claim.exp < now) return { valid: false, reason: "the claim has expired" };
  if (claim.exp > now + 2 * CLAIM_TTL_MS) return { valid: false, reason: "the claim expires too far ahead" };
  const signature = Buffer.from(claim.sig, "base64url");
  if (!verify(null, signedBytes(claim.role, claim.exp, binding, caller), key, signature)) {
    return { valid: false, reason: "bad signature" };
  }
  if (!mayAssert(claim.role, caller, binding)) {
    return { valid: false, reason: `role ${claim.role} may not assert a ${caller.type} caller on ${binding.name}` };
  }
  return { valid: true };
}

function isWireClaim(value: unknown): value is WireClaim {
  if (typeof value !== "object" || value === null) return false;
  const claim = value as Record<string, unknown>;
  return typeof claim.role === "string" && typeof claim.exp === "number" && typeof claim.sig === "string";
}
