import { diffOf } from "./diff";

describe("diffOf", () => {
  it("names each changed field by its path, with both values, and leaves equal ones out", () => {
    const before = { name: "Widget", price: { amount: 500, currency: "EUR" }, stock: 3, tags: ["a"] };
    const after = { name: "Widget", price: { amount: 650, currency: "EUR" }, stock: 3, tags: ["a", "b"], sku: "W-1" };
    expect(diffOf(before, after)).toEqual([
      { path: "price.amount", before: 500, after: 650 },
      { path: "tags", before: ["a"], after: ["a", "b"] },
      { path: "sku", before: undefined, after: "W-1" },
    ]);
  });

  it("shows a removed field, and nothing for two equal versions", () => {
    expect(diffOf({ a: 1, b: null }, { a: 1 })).toEqual([{ path: "b", before: null, after: undefined }]);
    expect(diffOf({ a: { b: 1 } }, { a: { b: 1 } })).toEqual([]);
  });
});
