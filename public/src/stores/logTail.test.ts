import type { LogRecord } from "../../../contracts/logs";
import { MAX_RECORDS, createLogTailStore } from "./logTail";

const record = (id: number): LogRecord => ({
  id,
  time: new Date(1_700_000_000_000 + id).toISOString(),
  level: "info",
  nodeId: "n1",
  module: "api",
  requestId: null,
  message: `record ${id}`,
  fields: null,
});

describe("log tail store", () => {
  it("shows the newest record first", () => {
    const store = createLogTailStore();
    [1, 2, 3].forEach((id) => store.getState().receive(record(id)));
    expect(store.getState().records.map((r) => r.id)).toEqual([3, 2, 1]);
    expect(store.getState().lastId).toBe(3);
  });

  it("opens with the latest stored records, and goes on after the newest of them", () => {
    const store = createLogTailStore();
    store.getState().seed([record(9), record(8), record(7)]);
    expect(store.getState().lastId).toBe(9);
    store.getState().receive(record(10));
    expect(store.getState().records.map((r) => r.id)).toEqual([10, 9, 8, 7]);
    store.getState().seed([]);
    expect(store.getState()).toMatchObject({ records: [], lastId: null });
  });

  it("holds new records while paused and shows them in order on resume", () => {
    const store = createLogTailStore();
    store.getState().receive(record(1));
    store.getState().pause();
    store.getState().receive(record(2));
    store.getState().receive(record(3));
    expect(store.getState().records.map((r) => r.id)).toEqual([1]);
    expect(store.getState().waiting).toHaveLength(2);
    store.getState().resume();
    expect(store.getState().records.map((r) => r.id)).toEqual([3, 2, 1]);
    expect(store.getState().waiting).toEqual([]);
  });

  it("keeps at most MAX_RECORDS", () => {
    const store = createLogTailStore();
    for (let id = 1; id <= MAX_RECORDS + 10; id++) store.getState().receive(record(id));
    expect(store.getState().records).toHaveLength(MAX_RECORDS);
    expect(store.getState().records[0].id).toBe(MAX_RECORDS + 10);
  });
});
