import { formatTime, timeZoneStore } from "./timeZone";

describe("time zone", () => {
  it("names the zone of every time, and shows UTC when chosen, remembered in the browser", () => {
    const at = "2026-12-03T08:05:00.000Z";
    expect(formatTime(at, "UTC")).toMatch(/8:05:00.*UTC/);
    expect(formatTime(null)).toBe("—");
    const before = timeZoneStore.getState().zone;
    timeZoneStore.getState().toggle();
    expect(timeZoneStore.getState().zone).not.toBe(before);
    expect(localStorage.getItem("aicunet.timeZone")).toBe(timeZoneStore.getState().zone);
    timeZoneStore.getState().toggle();
    expect(timeZoneStore.getState().zone).toBe(before);
  });
});
