import { loadConfig } from "../../lib/config";
import { dropAt } from "../../lib/failpoints";

describe("drop points", () => {
  it("lose the first message of an armed channel only, and nothing on a channel not armed", () => {
    const { failpoints } = loadConfig({ FAILPOINTS: "outbox.drop:saga.stepDue" });
    expect(dropAt(failpoints, "outbox.drop:order.created")).toBe(false);
    expect(dropAt(failpoints, "outbox.drop:saga.stepDue")).toBe(true);
    expect(dropAt(failpoints, "outbox.drop:saga.stepDue")).toBe(false);
  });

  it("lose as many messages as the point is listed", () => {
    const { failpoints } = loadConfig({ FAILPOINTS: "outbox.drop:order.created,outbox.drop:order.created" });
    expect([1, 2, 3].map(() => dropAt(failpoints, "outbox.drop:order.created"))).toEqual([true, true, false]);
  });

  it("lose their messages per node: two nodes in one process, armed alike, each lose their own", () => {
    const env = { FAILPOINTS: "outbox.drop:order.created" };
    const [first, second] = [loadConfig(env).failpoints, loadConfig(env).failpoints];
    expect(dropAt(first, "outbox.drop:order.created")).toBe(true);
    expect(dropAt(second, "outbox.drop:order.created")).toBe(true);
    expect(dropAt(first, "outbox.drop:order.created")).toBe(false);
  });

  it("are refused in production like the crash points", () => {
    expect(() =>
      loadConfig({
        NODE_ENV: "production",
        DATABASE_URL: "postgres://u:p@db:5432/postgres",
        AUTH_KEY_SECRET: "x".repeat(32),
        ADMIN_PASSWORD: "a-long-admin-password",
        FAILPOINTS: "outbox.drop:saga.stepDue",
      }),
    ).toThrow(/FAILPOINTS are for fault tests/);
  });
});
