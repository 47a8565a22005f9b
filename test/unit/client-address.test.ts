import { clientAddress, parseTrustedProxies } from "../../lib/client-address";
import { loadConfig } from "../../lib/config";

describe("clientAddress", () => {
  const trusted = parseTrustedProxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"]);

  it("is the socket's address when the peer is no trusted proxy, whatever the header says", () => {
    expect(clientAddress("203.0.113.9", "198.51.100.1", trusted)).toBe("203.0.113.9");
    expect(clientAddress("203.0.113.9", undefined, parseTrustedProxies([]))).toBe("203.0.113.9");
  });

  it("walks X-Forwarded-For from the right past trusted proxies to the first address that is not one", () => {
    expect(clientAddress("10.1.2.3", "198.51.100.1", trusted)).toBe("198.51.100.1");
    expect(clientAddress("10.1.2.3", "198.51.100.1, 10.9.9.9", trusted)).toBe("198.51.100.1");
    // What the client wrote to the left of its own address is not believed.
    expect(clientAddress("10.1.2.3", "1.2.3.4, 198.51.100.1, 10.9.9.9", trusted)).toBe("198.51.100.1");
    expect(clientAddress("10.1.2.3", ["1.2.3.4", "198.51.100.1"], trusted)).toBe("198.51.100.1");
  });

  it("normalises IPv4 peers on a dual-stack socket, and handles IPv6", () => {
    expect(clientAddress("::ffff:127.0.0.1", "198.51.100.1", trusted)).toBe("198.51.100.1");
    expect(clientAddress("fd00::1", "2001:db8::5", trusted)).toBe("2001:db8::5");
  });

  it("stops at a hop that is no address: the last trusted proxy's peer", () => {
    expect(clientAddress("10.1.2.3", "not-an-ip, 10.9.9.9", trusted)).toBe("10.9.9.9");
  });

  it("refuses a configuration entry that is neither an address nor a range", () => {
    expect(() => parseTrustedProxies(["10.0.0.0/33"])).toThrow(/prefix/);
    expect(() => loadConfig({ TRUSTED_PROXIES: "10.0.0.0/8, nginx" })).toThrow(/TRUSTED_PROXIES: "nginx"/);
    expect(loadConfig({ TRUSTED_PROXIES: "10.0.0.0/8, 127.0.0.1" }).trustedProxies).toEqual([
      "10.0.0.0/8",
      "127.0.0.1",
    ]);
  });
});
