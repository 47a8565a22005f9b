/**
 * JWT signing keys: ES256 key pairs with a key id, private keys encrypted at rest (AES-256-GCM under a key derived
 * from AUTH_KEY_SECRET), public keys published as a JWKS. Signing and verification pin the algorithm, issuer and
 * audience; `alg: none` and keys not in the set are rejected.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  randomBytes,
  randomUUID,
} from "node:crypto";
import jwt from "jsonwebtoken";

export const ALGORITHM = "ES256";

export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y: string;
  kid: string;
  alg: typeof ALGORITHM;
  use: "sig";
}

export interface SigningKey {
  kid: string;
  privateKeyPem: string;
  publicJwk: PublicJwk;
}

export function generateSigningKey(): SigningKey {
  const kid = randomUUID();
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicKey.export({ format: "jwk" }) as { kty: string; crv: string; x: string; y: string };
  return {
    kid,
    privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: ALGORITHM, use: "sig" },
  };
}

const encryptionKey = (secret: string) => createHash("sha256").update(`aicunet-signing-keys:${secret}`).digest();

/** `v1.<iv>.<tag>.<ciphertext>`, base64url parts. */
export function encryptPrivateKey(pem: string, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", encryptionKey(secret), iv);
  const body = Buffer.concat([cipher.update(pem, "utf8"), cipher.final()]);
  return ["v1", iv, cipher.getAuthTag(), body]
    .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
    .join(".");
}

export function decryptPrivateKey(sealed: string, secret: string): string {
  const [version, iv, tag, body] = sealed.split(".");
  if (version !== "v1") throw new Error(`Unknown private key format ${version}`);
  const decipher = createDecipheriv("aes-256-gcm", encryptionKey(secret), Buffer.from(iv, "base64url"));
  decipher.setAuthTag(Buffer.from(tag, "base64url"));
  return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
}

export interface TokenSettings {
  issuer: string;
  audience: string;
}

export interface AccessClaims {
  sub: string;
  /** `user` or `client`. */
  typ: "user" | "client";
  roles?: string[];
  scope?: string;
  /** The subject's token generation when the token was issued (lib/revocation.ts); absent counts as 0. */
  gen?: number;
}

export type VerifiedClaims = AccessClaims & { iss: string; aud: string; exp: number; iat: number; jti: string };

export function signAccessToken(
  claims: AccessClaims,
  key: { kid: string; privateKeyPem: string },
  settings: TokenSettings & { ttlSeconds: number },
): string {
  return jwt.sign(claims, key.privateKeyPem, {
    algorithm: ALGORITHM,
    keyid: key.kid,
    issuer: settings.issuer,
    audience: settings.audience,
    expiresIn: settings.ttlSeconds,
    jwtid: randomUUID(),
  });
}

/** A JWK as a key object: building one costs more than an ES256 verification, so verifiers keep it per `kid`. */
export function publicKeyObject(publicJwk: PublicJwk): KeyObject {
  return createPublicKey({ key: { ...publicJwk }, format: "jwk" });
}

/** The `kid` of a token's header, without trusting anything else in it. */
export function tokenKeyId(token: string): string | undefined {
  const decoded = jwt.decode(token, { complete: true });
  return decoded && typeof decoded === "object" ? decoded.header.kid : undefined;
}

/**
 * Verifies signature (ES256 only), issuer, audience and expiry against the given public key; throws otherwise. A token
 * without `exp` is refused: jsonwebtoken checks `exp` only when it is present, and such a token would never end.
 */
export function verifyAccessToken(
  token: string,
  publicKey: PublicJwk | KeyObject,
  settings: TokenSettings,
): VerifiedClaims {
  const key = publicKey instanceof KeyObject ? publicKey : publicKeyObject(publicKey);
  const claims = jwt.verify(token, key, {
    algorithms: [ALGORITHM],
    issuer: settings.issuer,
    audience: settings.audience,
  });
  if (typeof claims !== "object" || typeof claims.exp !== "number" || typeof claims.iat !== "number") {
    throw new jwt.JsonWebTokenError("the token has no exp or iat");
  }
  return claims as VerifiedClaims;
}
