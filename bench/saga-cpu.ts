/**
 * CPU accounting for the saga bench from /proc: utime + stime of the nodes, nats-server and every `postgres` process,
 * this process's `process.cpuUsage()`, and the whole machine from /proc/stat, sampled at the start and the end of a
 * phase and reported in cores (CPU seconds per wall second).
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import type { SagaNode } from "./saga-nodes";

/** Clock ticks per second, the unit of /proc/<pid>/stat. */
export const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;

interface ProcInfo {
  comm: string;
  cmdline: string;
  /** utime + stime, in clock ticks, of every thread of the process. */
  ticks: number;
}

export function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const open = stat.indexOf("(");
    const close = stat.lastIndexOf(")");
    // Fields after the command name, from field 3 (state): utime is field 14, stime field 15.
    const rest = stat.slice(close + 2).split(" ");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    return { comm: stat.slice(open + 1, close), cmdline, ticks: Number(rest[11]) + Number(rest[12]) };
  } catch {
    return undefined;
  }
}

/** Every process of the machine whose command is one of `comms`. */
export function processesNamed(comms: string[]): Map<number, ProcInfo> {
  const found = new Map<number, ProcInfo>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const info = readProc(Number(entry));
    if (info && comms.includes(info.comm)) found.set(Number(entry), info);
  }
  return found;
}

/** The machine's CPU time from the first line of /proc/stat, in ticks. */
function machineTicks(): { total: number; idle: number; iowait: number; steal: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice already)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle, iowait, steal };
}

interface CpuSample {
  at: number;
  nodes: Map<string, number>;
  nats: number;
  postgres: Map<number, ProcInfo>;
  bench: NodeJS.CpuUsage;
  machine: ReturnType<typeof machineTicks>;
}

export interface CpuRow {
  what: string;
  /** CPU seconds per wall second. */
  cores: number;
}

export interface CpuReport {
  seconds: number;
  rows: CpuRow[];
  /** Busy share of the whole machine (not idle, not waiting for I/O), in cores. */
  machineBusy: number;
  machineIowait: number;
  machineSteal: number;
  /** What the machine did beyond the rows: the kernel, other people's processes. */
  other: number;
  cores: number;
}

/** Samples the CPU time of the bench's processes and the machine; `report` turns two samples into cores. */
export class CpuMeter {
  constructor(
    private nodes: SagaNode[],
    private natsPort: number,
    private prefix: string,
  ) {}

  natsPid(): number | undefined {
    for (const [pid, info] of processesNamed(["nats-server"])) {
      if (` ${info.cmdline} `.includes(` -p ${this.natsPort} `)) return pid;
    }
    return undefined;
  }

  sample(): CpuSample {
    const pid = this.natsPid();
    return {
      at: performance.now(),
      nodes: new Map(this.nodes.map((node) => [node.name, readProc(node.process.child.pid!)?.ticks ?? 0])),
      nats: pid ? (readProc(pid)?.ticks ?? 0) : 0,
      postgres: processesNamed(["postgres"]),
      bench: process.cpuUsage(),
      machine: machineTicks(),
    };
  }

  report(before: CpuSample, after: CpuSample): CpuReport {
    const seconds = (after.at - before.at) / 1000;
    const cores = (ticks: number) => ticks / CLK_TCK / seconds;
    const rows: CpuRow[] = this.nodes.map((node) => ({
      what: `${node.name} (${node.services})`,
      cores: cores(after.nodes.get(node.name)! - before.nodes.get(node.name)!),
    }));
    rows.push({ what: "nats-server", cores: cores(after.nats - before.nats) });
    // A backend's command line names its database: the bench's backends carry the prefix.
    let ours = 0;
    let others = 0;
    for (const [pid, info] of after.postgres) {
      const used = info.ticks - (before.postgres.get(pid)?.ticks ?? 0);
      if (info.cmdline.includes(this.prefix)) ours += used;
      else others += used;
    }
    rows.push({ what: "postgres: backends of the bench's databases", cores: cores(ours) });
    rows.push({
      what: "postgres: its other processes (WAL writer, checkpointer, other databases…)",
      cores: cores(others),
    });
    const bench = process.cpuUsage(before.bench);
    rows.push({
      what: "bench process (load generator, completion poller)",
      cores: (bench.user + bench.system) / 1e6 / seconds,
    });
    const total = after.machine.total - before.machine.total;
    const share = (ticks: number) => (ticks / total) * cpus().length;
    const idle = after.machine.idle - before.machine.idle;
    const iowait = after.machine.iowait - before.machine.iowait;
    const machineBusy = share(total - idle - iowait);
    return {
      seconds,
      rows,
      machineBusy,
      machineIowait: share(iowait),
      machineSteal: share(after.machine.steal - before.machine.steal),
      other: machineBusy - rows.reduce((sum, row) => sum + row.cores, 0),
      cores: cpus().length,
    };
  }
}
