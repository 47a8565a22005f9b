/** HTTP Basic client credentials as the OAuth2 token endpoint reads them. */
import { OAuthError } from "./errors";

/**
 * The client id and secret of an `Authorization: Basic` header's value. RFC 6749 §2.3.1 has them form-urlencoded
 * before the Basic encoding; credentials that do not decode are the client's mistake (`invalid_client`), never a 500.
 */
export function parseBasicCredentials(encoded: string): { id: string; secret: string } {
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const separator = decoded.indexOf(":");
  if (separator < 0) throw new OAuthError("invalid_client", "malformed Basic credentials");
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, separator)),
      secret: decodeURIComponent(decoded.slice(separator + 1)),
    };
  } catch {
    throw new OAuthError("invalid_client", "malformed Basic credentials: not form-urlencoded");
  }
}
