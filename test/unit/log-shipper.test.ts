import type { ServiceBroker } from "moleculer";
import { setChannelsReady } from "../../lib/delivery";
import { LogShipper } from "../../lib/log-shipper";

/**
 * A stand-in for the broker: the shipper only needs its node id, the channel adapter and `sendToChannel`, once its
 * channels are ready.
 */
function fakeBroker(fail: () => boolean) {
  const sent: { records: { message: string; level: string }[]; dropped: number }[] = [];
  const broker = {
    nodeID: "node-1",
    channelAdapter: { addPrefixTopic: (name: string) => name },
    async sendToChannel(_channel: string, envelope: { payload: (typeof sent)[number] }) {
      if (fail()) throw new Error("NATS is down");
      sent.push(envelope.payload);
    },
  };
  setChannelsReady(broker, true);
  return { broker: broker as unknown as ServiceBroker, sent };
}

function shipperFor(broker: ServiceBroker, bufferLimit: number) {
  const shipper = new LogShipper({ level: "info", bufferLimit, intervalMs: 60_000 });
  shipper.init({ broker } as never);
  const log = shipper.getLogHandler({ mod: "products", nodeID: "node-1", ns: "" } as never)!;
  return { shipper, log };
}

describe("log shipping", () => {
  it("ships records at its level and above, with the message and the fields", async () => {
    const { broker, sent } = fakeBroker(() => false);
    const { shipper, log } = shipperFor(broker, 100);
    log("info", ["Created product", { sku: "W-1" }]);
    log("debug", ["not shipped"]);
    log("error", [new Error("boom")]);
    await shipper.ship();
    shipper.stop();
    expect(sent).toHaveLength(1);
    expect(sent[0].records).toEqual([
      expect.objectContaining({
        level: "info",
        message: "Created product",
        fields: { sku: "W-1" },
        module: "products",
      }),
      expect.objectContaining({ level: "error", message: expect.stringContaining("Error: boom") }),
    ]);
  });

  it("leaves out the console trace exporter's drawings", () => {
    const { broker } = fakeBroker(() => false);
    const shipper = new LogShipper({ level: "info" });
    shipper.init({ broker } as never);
    expect(shipper.getLogHandler({ mod: "tracer", nodeID: "node-1", ns: "" } as never)).toBeNull();
    shipper.stop();
  });

  it("keeps records while the channel is down, delivers them after, and reports what did not fit", async () => {
    let down = true;
    const { broker, sent } = fakeBroker(() => down);
    const { shipper, log } = shipperFor(broker, 3);
    for (let i = 0; i < 5; i++) log("warn", [`record ${i}`]);
    await shipper.ship();
    expect(sent).toEqual([]);
    down = false;
    await shipper.ship();
    shipper.stop();
    expect(sent).toHaveLength(1);
    expect(sent[0].records.map((record) => record.message)).toEqual(["record 0", "record 1", "record 2"]);
    expect(sent[0].dropped).toBe(2);
  });
});
