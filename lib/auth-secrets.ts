/**
 * The auth service's secrets: random ones (refresh tokens, client secrets) stored only as their hashes, and the
 * signing keys' private halves, stored encrypted under AUTH_KEY_SECRET (lib/signing-keys.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import type { KeyRow } from "./auth-rows";
import { SigningKeyUnavailableError } from "./errors";
import { decryptPrivateKey } from "./signing-keys";

export const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
export const newSecret = () => randomBytes(32).toString("base64url");

/** The signing key's private half; `SigningKeyUnavailableError` when this node's AUTH_KEY_SECRET cannot open it. */
export function openSigningKey(row: Pick<KeyRow, "kid" | "private_key">, secret: string) {
  try {
    return { kid: row.kid, privateKeyPem: decryptPrivateKey(row.private_key, secret) };
  } catch {
    throw new SigningKeyUnavailableError(row.kid);
  }
}
