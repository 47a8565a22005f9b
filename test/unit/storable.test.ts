import { isUnstorableText, storable, storableJson, storableText } from "../../lib/storable";

/** The documented way back: U+E000 and four hex digits stand for that code unit. */
const restore = (text: string) =>
  text.replace(/\ue000([0-9a-f]{4})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

describe("storable text", () => {
  it("escapes U+0000, lone surrogates and the escape character, and leaves other text alone", () => {
    expect(storableText("Bob\u0000")).toBe("Bob\ue0000000");
    expect(storableText("\ud800x\udfff")).toBe("\ue000d800x\ue000dfff");
    expect(storableText("\ue000")).toBe("\ue000e000");
    expect(storableText("plain, ümlaut, 😀 and a literal \\u0000")).toBe("plain, ümlaut, 😀 and a literal \\u0000");
  });

  it("is reversible", () => {
    for (const text of ["Bob\u0000", "\ud800", "a\udc00b", "\ue000\ue0000000", "😀\u0000😀", ""]) {
      expect(isUnstorableText(storableText(text))).toBe(false);
      expect(restore(storableText(text))).toBe(text);
    }
  });

  it("tells unstorable text from text with surrogate pairs", () => {
    expect(isUnstorableText("a\u0000")).toBe(true);
    expect(isUnstorableText("\ud83d")).toBe(true);
    expect(isUnstorableText("😀")).toBe(false);
    expect(isUnstorableText("\ue000")).toBe(false);
  });

  it("makes keys and values at any depth storable in the JSON a jsonb write binds", () => {
    const value = { "k\u0000": ["v\u0000", { inner: "\ud800" }], at: new Date(0), skipped: undefined, n: 1 };
    expect(storableJson(value)).toBe(
      '{"k\ue0000000":["v\ue0000000",{"inner":"\ue000d800"}],"at":"1970-01-01T00:00:00.000Z","n":1}',
    );
    expect(storable(value)).toEqual(JSON.parse(storableJson(value)));
    expect(storableJson(undefined)).toBe("null");
  });

  it("writes JSON that needs no escape as plain JSON.stringify does, look-alikes included", () => {
    for (const value of [
      { plain: "text", emoji: "😀", nested: [1, { deep: "ü" }] },
      // A backslash followed by the letters of an escape: no code unit to escape, though the JSON looks like one.
      { literal: "\\u0000 and \\ud800" },
    ]) {
      expect(storableJson(value)).toBe(JSON.stringify(value));
    }
    // U+E000 itself is escaped (so reading back can tell it from an escape), and so is whatever JSON writes as \u0000.
    expect(storableJson({ a: "\ue000", b: "\u0000" })).toBe('{"a":"\ue000e000","b":"\ue0000000"}');
  });
});
