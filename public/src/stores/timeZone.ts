/**
 * Whether the console shows times in the browser's zone or in UTC (the zone servers log in), kept in the browser
 * across sessions. Every time shown names its zone.
 */
import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";

export type TimeZoneChoice = "local" | "UTC";
const KEY = "aicunet.timeZone";

function stored(): TimeZoneChoice {
  try {
    return globalThis.localStorage?.getItem(KEY) === "UTC" ? "UTC" : "local";
  } catch {
    return "local";
  }
}

export const timeZoneStore = createStore<{ zone: TimeZoneChoice; toggle(): void }>()((set, get) => ({
  zone: stored(),
  toggle() {
    const zone = get().zone === "UTC" ? "local" : "UTC";
    try {
      globalThis.localStorage?.setItem(KEY, zone);
    } catch {
      // Not kept (storage disabled): the choice lasts until the page is reloaded.
    }
    set({ zone });
  },
}));

export const useTimeZone = () => useStore(timeZoneStore, (state) => state.zone);

/** A time as the console shows it: date, time and the zone's name, in the chosen zone. */
export function formatTime(iso: string | null | undefined, zone: TimeZoneChoice = timeZoneStore.getState().zone) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, {
    timeZone: zone === "UTC" ? "UTC" : undefined,
    timeZoneName: "short",
  });
}
