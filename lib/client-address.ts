/**
 * The client's address behind load balancers. `X-Forwarded-For` is only believed as far as it was written by proxies
 * the operator trusts (`TRUSTED_PROXIES`): walking it from the right, each hop added by a trusted proxy is skipped and
 * the first address that is not one is the client. Without trusted proxies, or when the socket's peer is not one,
 * the socket's address is the client, whatever the header claims.
 */
import { BlockList, isIP } from "node:net";

/** Normalises `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) to `10.0.0.1`. */
function plain(address: string): string {
  const trimmed = address.trim();
  return trimmed.startsWith("::ffff:") && isIP(trimmed.slice(7)) === 4 ? trimmed.slice(7) : trimmed;
}

/** The BlockList family of an address, or undefined for what is no address. */
function familyOf(address: string): "ipv4" | "ipv6" | undefined {
  const version = isIP(address);
  return version === 4 ? "ipv4" : version === 6 ? "ipv6" : undefined;
}

/** Parses `10.0.0.0/8,fd00::/8,127.0.0.1`; throws naming the first entry that is neither an address nor a CIDR. */
export function parseTrustedProxies(list: string[]): BlockList {
  const trusted = new BlockList();
  for (const entry of list) {
    const [address, prefix] = entry.split("/");
    const family = familyOf(address);
    if (!family) throw new Error(`"${entry}" is not an IP address or CIDR range`);
    if (prefix === undefined) {
      trusted.addAddress(address, family);
      continue;
    }
    const bits = Number(prefix);
    if (!Number.isInteger(bits) || bits < 0 || bits > (family === "ipv4" ? 32 : 128)) {
      throw new Error(`"${entry}" has no valid prefix length`);
    }
    trusted.addSubnet(address, bits, family);
  }
  return trusted;
}

const isTrusted = (trusted: BlockList, address: string) => {
  const family = familyOf(address);
  return family !== undefined && trusted.check(address, family);
};

export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: BlockList,
): string {
  let client = plain(socketAddress ?? "unknown");
  if (!isTrusted(trusted, client) || !forwardedFor) return client;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor).split(",").map(plain);
  for (let i = hops.length - 1; i >= 0; i--) {
    // A hop that is no address is a forgery or garbage: the last trusted proxy's peer is as far as we can believe.
    if (!familyOf(hops[i])) return client;
    client = hops[i];
    if (!isTrusted(trusted, client)) return client;
  }
  return client;
}
