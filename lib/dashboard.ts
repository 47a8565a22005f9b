/**
 * The figures of the operations dashboard, as plain data: what each gateway node counts of the HTTP traffic it
 * serves, how samples of the cluster are taken from those counts, and the last 15 minutes of them.
 */

/** Status classes the gateway counts requests by. */
export const STATUS_CLASSES = ["2xx", "3xx", "4xx", "5xx"] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export const statusClass = (status: number): StatusClass =>
  status >= 500 ? "5xx" : status >= 400 ? "4xx" : status >= 300 ? "3xx" : "2xx";

/** One gateway node's counters since it started, and its latency over the last minute. */
export interface GatewayTraffic {
  nodeID: string;
  requests: Record<StatusClass, number>;
  /** Quantiles of the last minute's requests, in ms; null before any request. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface Sample {
  time: string;
  /** HTTP requests per second served by every gateway since the previous sample; null for the first sample. */
  requestsPerSecond: number | null;
  /** Share of those that answered 5xx (a fault of ours; 4xx are the clients'); null when there were none. */
  errorRatio: number | null;
  /** The slowest gateway's p50/p99 over the last minute, in ms. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Pending dead letters, all channels; null when the dlq service did not answer. */
  deadLetters: number | null;
  /** Sagas running or compensating, and parked as FAILED; null when the sagas service did not answer. */
  sagasInFlight: number | null;
  sagasFailed: number | null;
  /** Of those in flight, the ones not moved for SAGA_STALL_AFTER (the sweeper sends their command again). */
  sagasStalled: number | null;
}

export const SAMPLE_EVERY_MS = 15_000;
/** 15 minutes of samples. */
export const HISTORY_LENGTH = 60;

const total = (requests: Record<StatusClass, number>) => STATUS_CLASSES.reduce((sum, key) => sum + requests[key], 0);

/**
 * Rates between two readings of every gateway's counters. A gateway that restarted (counters went down) or is new
 * counts from zero; one that disappeared counts nothing.
 */
export function trafficSample(
  previous: ReadonlyMap<string, GatewayTraffic>,
  current: readonly GatewayTraffic[],
  elapsedMs: number,
): Pick<Sample, "requestsPerSecond" | "errorRatio" | "p50Ms" | "p99Ms"> {
  let requests = 0;
  let errors = 0;
  for (const gateway of current) {
    const before = previous.get(gateway.nodeID);
    const restarted = before && total(gateway.requests) < total(before.requests);
    const base = before && !restarted ? before.requests : undefined;
    requests += total(gateway.requests) - (base ? total(base) : 0);
    errors += gateway.requests["5xx"] - (base ? base["5xx"] : 0);
  }
  const slowest = (pick: (gateway: GatewayTraffic) => number | null) => {
    const values = current.map(pick).filter((value): value is number => value !== null);
    return values.length > 0 ? Math.round(Math.max(...values) * 10) / 10 : null;
  };
  return {
    // No previous reading: no interval to make a rate of, rather than a made-up zero.
    requestsPerSecond: elapsedMs > 0 ? Math.round((requests / (elapsedMs / 1000)) * 100) / 100 : null,
    errorRatio: elapsedMs > 0 && requests > 0 ? Math.round((errors / requests) * 10_000) / 10_000 : null,
    p50Ms: slowest((gateway) => gateway.p50Ms),
    p99Ms: slowest((gateway) => gateway.p99Ms),
  };
}

/** Appends a sample, keeping the last `HISTORY_LENGTH`. */
export function withSample(history: readonly Sample[], sample: Sample): Sample[] {
  return [...history, sample].slice(-HISTORY_LENGTH);
}
