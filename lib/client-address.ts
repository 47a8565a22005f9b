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

/** Parses `10.0.0.0/8,fd00::/8,127.0.0.1`; throws naming the first entry that is neither an address nor a CIDR. */
export function parseTrustedProxies(list: string[]): BlockList {
  const trusted = new BlockList();
  for (const entry of list) {
    const [address, prefix] = entry.split("/");
    const family = isIP(address);
    if (!family) throw new Error(`"${entry}" is not an IP address or CIDR range`);
    const type = family === 4 ? "ipv4" : "ipv6";
    if (prefix === undefined) {
      trusted.addAddress(address, type);
      continue;
    }
    const bits = Number(prefix);
    if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
      throw new Error(`"${entry}" has no valid prefix length`);
    }
    trusted.addSubnet(address, bits, type);
  }
  return trusted;
}

const isTrusted = (trusted: BlockList, address: string) => {
  const family = isIP(address);
  return family !== 0 && trusted.check(address, family === 4 ? "ipv4" : "ipv6");
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
    if (!isIP(hops[i])) return client;
    client = hops[i];
    if (!isTrusted(trusted, client)) return client;
  }
  return client;
}
