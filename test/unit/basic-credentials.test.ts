import { parseBasicCredentials } from "../../lib/basic-credentials";

const basic = (text: string) => Buffer.from(text).toString("base64");

describe("Basic client credentials", () => {
  it("reads a form-urlencoded id and secret", () => {
    expect(parseBasicCredentials(basic("client_1:s%3Acret%25"))).toEqual({ id: "client_1", secret: "s:cret%" });
  });

  it.each([
    ["no separator", "client_1"],
    ["a broken percent-encoding", "%E0%A4%A:x"],
  ])("refuses %s as invalid_client", (_case, text) => {
    expect(() => parseBasicCredentials(basic(text))).toThrow(
      expect.objectContaining({ code: 401, type: "invalid_client" }),
    );
  });
});
