/**
 * The live log tail's state: the newest records first, at most `MAX_RECORDS`; while paused, new records wait (and
 * are counted) instead of moving the list under the reader's eyes.
 */
import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";
import type { LogRecord } from "../../../contracts/logs";

export const MAX_RECORDS = 500;

export interface LogTailState {
  records: LogRecord[];
  waiting: LogRecord[];
  paused: boolean;
  /** The last record id received, to resume the stream from. */
  lastId: number | null;
  /** Starts the tail with the latest stored records (newest first), so it does not open empty. */
  seed(latest: LogRecord[]): void;
  receive(record: LogRecord): void;
  pause(): void;
  resume(): void;
  clear(): void;
}

const newestFirst = (records: LogRecord[]) => records.slice(-MAX_RECORDS).reverse();

export const createLogTailStore = () =>
  createStore<LogTailState>()((set, get) => ({
    records: [],
    waiting: [],
    paused: false,
    lastId: null,
    seed(latest) {
      set({ records: latest.slice(0, MAX_RECORDS), waiting: [], lastId: latest[0]?.id ?? null });
    },
    receive(record) {
      const { paused, records, waiting } = get();
      if (paused) set({ waiting: [...waiting, record].slice(-MAX_RECORDS), lastId: record.id });
      else set({ records: [record, ...records].slice(0, MAX_RECORDS), lastId: record.id });
    },
    pause() {
      set({ paused: true });
    },
    resume() {
      const { records, waiting } = get();
      set({ paused: false, waiting: [], records: [...newestFirst(waiting), ...records].slice(0, MAX_RECORDS) });
    },
    clear() {
      set({ records: [], waiting: [] });
    },
  }));

export const logTailStore = createLogTailStore();
export const useLogTail = <T>(select: (state: LogTailState) => T): T => useStore(logTailStore, select);
