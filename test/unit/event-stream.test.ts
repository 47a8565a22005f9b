import { parseEvents } from "../../lib/event-stream";

describe("parseEvents", () => {
  it("splits complete events, keeps the incomplete rest, and skips comments", () => {
    const { events, rest } = parseEvents(
      'retry: 2000\n\n: keep-alive\n\nid: 7\nevent: log\ndata: {"id":7}\n\nevent: order\ndata: {"st',
    );
    expect(events).toEqual([{ event: "log", data: '{"id":7}', id: "7" }]);
    expect(rest).toBe('event: order\ndata: {"st');
  });

  it("joins multi-line data and defaults the event name", () => {
    expect(parseEvents("data: a\ndata: b\n\n").events).toEqual([{ event: "message", data: "a\nb", id: undefined }]);
  });
});
