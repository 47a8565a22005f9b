/**
 * Trace sampling that keeps what an operator looks for. A share of traces (`TRACING_SAMPLE_RATE`) is exported whole;
 * of the others, a node exports its part of a trace only if one of its spans there failed or took `TRACING_SLOW_MS` or
 * longer, and then all of its spans of that trace. The share is chosen by a hash of the trace id, so every node keeps
 * or drops the same traces; a failed or slow trace is kept on the nodes where it failed or was slow (an error returned
 * to the caller fails the caller's span too, so that is usually every node the request passed).
 *
 * Spans of a trace not in the share are held on the node until its last open span of that trace has finished (so memory
 * is bounded by the requests in flight), then exported or dropped together.
 */
import { TracerExporters, type Span, type Tracer } from "moleculer";

export interface TraceSamplingOptions {
  /** Share of traces exported whole, 0 to 1. */
  rate: number;
  /** A span this long or longer (ms) keeps its node's part of the trace. */
  slowMs: number;
  /** The exporters the kept spans go to. */
  exporters: TracerExporters.Base[];
  /** Traces held at most; the oldest is dropped beyond it (spans that never finish must not grow the map). */
  maxHeldTraces?: number;
}

interface HeldTrace {
  open: number;
  keep: boolean;
  finished: Span[];
}

/** FNV-1a of the trace id, as a fraction of 2^32: the same trace id gives the same decision on every node. */
export function traceFraction(traceId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < traceId.length; i++) {
    hash ^= traceId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) / 2 ** 32;
}

export class SampledTraceExporter extends TracerExporters.Base {
  private readonly held = new Map<string, HeldTrace>();
  private readonly maxHeldTraces: number;

  constructor(private readonly sampling: TraceSamplingOptions) {
    super({});
    this.maxHeldTraces = sampling.maxHeldTraces ?? 10_000;
  }

  override init(tracer: Tracer): void {
    super.init(tracer);
    for (const exporter of this.sampling.exporters) exporter.init(tracer);
  }

  override stop(): void {
    for (const exporter of this.sampling.exporters) exporter.stop();
  }

  private inShare(span: Span): boolean {
    return traceFraction(span.traceID) < this.sampling.rate;
  }

  override spanStarted(span: Span): void {
    if (this.inShare(span)) {
      for (const exporter of this.sampling.exporters) exporter.spanStarted(span);
      return;
    }
    const trace = this.held.get(span.traceID);
    if (trace) {
      trace.open++;
      return;
    }
    if (this.held.size >= this.maxHeldTraces) this.held.delete(this.held.keys().next().value!);
    this.held.set(span.traceID, { open: 1, keep: false, finished: [] });
  }

  override spanFinished(span: Span): void {
    if (this.inShare(span)) {
      for (const exporter of this.sampling.exporters) exporter.spanFinished(span);
      return;
    }
    const trace = this.held.get(span.traceID);
    if (!trace) {
      // Its trace was dropped from a full map, or ended here before; decide on this span alone.
      if (this.worthKeeping(span)) this.export([span]);
      return;
    }
    trace.open--;
    trace.finished.push(span);
    trace.keep ||= this.worthKeeping(span);
    if (trace.keep) {
      this.export(trace.finished);
      trace.finished = [];
    }
    if (trace.open <= 0) this.held.delete(span.traceID);
  }

  private worthKeeping(span: Span): boolean {
    return Boolean(span.error) || (span.duration ?? 0) >= this.sampling.slowMs;
  }

  /** Spans in the order they finished; exporters that draw trees (console) need each start first. */
  private export(spans: Span[]): void {
    const byStart = [...spans].sort((a, b) => (a.startTime ?? 0) - (b.startTime ?? 0));
    for (const exporter of this.sampling.exporters) {
      for (const span of byStart) exporter.spanStarted(span);
      for (const span of spans) exporter.spanFinished(span);
    }
  }
}
