import {
  displayNameProblem,
  emailProblem,
  normalizeDisplayName,
  normalizeEmail,
  passwordProblem,
} from "../../lib/account-input";

describe("account input", () => {
  it("normalises an e-mail address to NFKC lower case and accepts ASCII and xn-- domains", () => {
    expect(normalizeEmail(" \uFF21da@Example.COM ")).toBe("ada@example.com");
    expect(emailProblem("email", "ada@example.com")).toBeUndefined();
    expect(emailProblem("email", "ada@xn--mnchen-3ya.de")).toBeUndefined();
  });

  it.each([
    ["a Cyrillic look-alike", "\u0430da@example.com"],
    ["a non-ASCII domain", "ada@m\u00FCnchen.de"],
    ["an invalid A-label", "ada@xn--a.de"],
  ])("refuses an address with %s", (_case, email) => {
    expect(emailProblem("email", normalizeEmail(email))).toMatchObject({ field: "email", type: "emailCharacters" });
  });

  it("accepts names in any script and refuses hidden or control characters", () => {
    for (const name of ["Ada Lovelace", "Jürgen", "Алла", "李雷", "Zoë 👩‍💻".replace("\u200D", "")]) {
      expect(displayNameProblem("displayName", normalizeDisplayName(name))).toBeUndefined();
    }
    for (const name of [
      "a\u202Eb",
      "a\u0000b",
      "a\u200Bb",
      "a\u2028b",
      "a\uE000b",
      "e\u0301\u0302\u0303\u0304\u0305",
    ]) {
      expect(displayNameProblem("displayName", normalizeDisplayName(name))).toMatchObject({
        type: "displayNameCharacters",
      });
    }
  });

  it("refuses passwords of white space or too few distinct characters, and never echoes them", () => {
    expect(passwordProblem("password", " ".repeat(10))).toMatchObject({ type: "passwordWeak" });
    expect(passwordProblem("password", "\u3000".repeat(12))).toMatchObject({ type: "passwordWeak" });
    expect(passwordProblem("password", "abababababab")).toMatchObject({ type: "passwordWeak" });
    expect(passwordProblem("password", "abababababab")).not.toHaveProperty("actual");
    expect(passwordProblem("password", "correct horse battery")).toBeUndefined();
  });
});
