import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ServiceBroker, type Middleware } from "moleculer";
import { AuditMiddleware } from "../../middlewares/audit.middleware";

/** The channels of a node whose NATS is away: every publish is refused. */
const channelsAway: Middleware = {
  name: "ChannelsAway",
  created(broker: ServiceBroker) {
    broker.sendToChannel = () => Promise.reject(new Error("NATS is away"));
    broker.channelAdapter = { addPrefixTopic: (name: string) => name, parseMessageHeaders: () => null };
  },
};

describe("audit middleware", () => {
  let spoolDir: string;
  let broker: ServiceBroker;
  let changes: number;

  beforeEach(async () => {
    spoolDir = await mkdtemp(path.join(tmpdir(), "aicunet-audit-unit-"));
    changes = 0;
    broker = new ServiceBroker({
      logger: false,
      middlewares: [channelsAway, AuditMiddleware({ spoolDir, spoolLimit: 2 })],
    });
    broker.createService({
      name: "things",
      actions: {
        change: {
          audit: { entity: "thing" },
          handler: () => ({ id: `thing-${++changes}` }),
        },
      },
    });
    await broker.start();
  });

  afterEach(async () => {
    await broker.stop();
    await rm(spoolDir, { recursive: true, force: true });
  });

  it("spools records while the channel is away, and refuses audited calls before they change anything once it is full", async () => {
    await broker.call("things.change");
    await broker.call("things.change");
    expect((await readdir(spoolDir)).filter((name) => name.endsWith(".json"))).toHaveLength(2);

    await expect(broker.call("things.change")).rejects.toMatchObject({
      code: 503,
      type: "DEPENDENCY_UNAVAILABLE",
      retryable: true,
    });
    // The refused call's handler never ran: no change without its record.
    expect(changes).toBe(2);
  });
});
