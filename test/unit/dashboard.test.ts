import { trafficSample, withSample, HISTORY_LENGTH, type GatewayTraffic, type Sample } from "../../lib/dashboard";

const gateway = (nodeID: string, ok: number, failed: number, p99Ms: number | null = null): GatewayTraffic => ({
  nodeID,
  requests: { "2xx": ok, "3xx": 0, "4xx": 0, "5xx": failed },
  p50Ms: p99Ms === null ? null : p99Ms / 2,
  p99Ms,
});

describe("trafficSample", () => {
  it("has no rate and no error ratio without a previous reading, rather than a made-up zero", () => {
    expect(trafficSample(new Map(), [gateway("g1", 10, 0)], 0)).toMatchObject({
      requestsPerSecond: null,
      errorRatio: null,
    });
  });

  it("adds up every gateway's requests since the last reading, and the share that failed", () => {
    const previous = new Map([["g1", gateway("g1", 100, 0)]]);
    // g1 served 30 more (3 failed); g2 is new and counts from zero; the window is 10 s.
    const sample = trafficSample(previous, [gateway("g1", 127, 3, 40), gateway("g2", 20, 0, 90)], 10_000);
    expect(sample).toEqual({ requestsPerSecond: 5, errorRatio: 0.06, p50Ms: 45, p99Ms: 90 });
  });

  it("counts a restarted gateway from zero, and no traffic as no error ratio", () => {
    const previous = new Map([["g1", gateway("g1", 500, 5)]]);
    expect(trafficSample(previous, [gateway("g1", 10, 1)], 5_000)).toMatchObject({
      requestsPerSecond: 2.2,
      errorRatio: 0.0909,
    });
    expect(trafficSample(previous, [gateway("g1", 500, 5)], 5_000)).toMatchObject({
      requestsPerSecond: 0,
      errorRatio: null,
    });
  });
});

it("keeps the last 15 minutes of samples", () => {
  const sample = { time: "t" } as Sample;
  let history: Sample[] = [];
  for (let i = 0; i < HISTORY_LENGTH + 5; i++) history = withSample(history, { ...sample, time: String(i) });
  expect(history).toHaveLength(HISTORY_LENGTH);
  expect(history[0].time).toBe("5");
});
