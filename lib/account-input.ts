/**
 * What an account's e-mail address, display name and password may be, beyond the parameter schemas' lengths. Each
 * check returns the problem (for a 422 naming the field) or nothing.
 *
 * - E-mail addresses are normalised (NFKC, lower case), then must be ASCII: a look-alike address in another script
 *   (Cyrillic "а" for Latin "a") is refused rather than stored beside the real one. An internationalised domain is
 *   accepted in its ASCII form (`xn--…`, which shows what it is), and must be valid IDNA there.
 * - Display names are normalised (NFC) and may not hold control, format (bidirectional overrides, zero-width
 *   characters), private-use, unassigned or line/paragraph-separator characters, nor stacks of combining marks:
 *   these make a name display as something else in the console, the logs and the audit trail.
 * - Passwords may not be only white space nor have fewer than `MIN_DISTINCT_PASSWORD_CHARS` different characters.
 */
import { domainToASCII, domainToUnicode } from "node:url";
import { invalidFields, type FieldProblem } from "./errors";

export const MIN_DISTINCT_PASSWORD_CHARS = 5;

const ASCII_EMAIL = /^[\x21-\x7e]+@[a-z0-9.-]+$/;
const HIDDEN_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;
const MARK_STACK = /\p{M}{4,}/u;

/** The one spelling an address is stored and looked up under. */
export function normalizeEmail(email: string): string {
  return email.normalize("NFKC").trim().toLowerCase();
}

/** `email` as `normalizeEmail` returns it. */
export function emailProblem(field: string, email: string): FieldProblem | undefined {
  const problem = (message: string): FieldProblem => ({ field, message, type: "emailCharacters", actual: email });
  if (!ASCII_EMAIL.test(email)) {
    return problem(`'${field}' must be ASCII; write an internationalised domain in its xn-- form`);
  }
  const domain = email.slice(email.lastIndexOf("@") + 1);
  // An A-label must decode, and encode back to itself (Node's domainToASCII alone lets a broken xn-- label through;
  // depending on the Node version a label that does not decode comes back empty or unchanged).
  const decoded = domainToUnicode(domain);
  if (decoded.split(".").some((label) => label.startsWith("xn--")) || domainToASCII(decoded) !== domain) {
    return problem(`'${field}' has a domain that is not valid IDNA`);
  }
  return undefined;
}

export function normalizeDisplayName(name: string): string {
  return name.normalize("NFC").trim();
}

export function displayNameProblem(field: string, name: string): FieldProblem | undefined {
  if (HIDDEN_OR_CONTROL.test(name) || MARK_STACK.test(name)) {
    return {
      field,
      message: `'${field}' may not contain control, formatting (bidirectional, zero-width) or invisible characters`,
      type: "displayNameCharacters",
      actual: name,
    };
  }
  return undefined;
}

/** No `actual` in the problem: a password is never echoed. */
export function passwordProblem(field: string, password: string): FieldProblem | undefined {
  const normalized = password.normalize("NFKC");
  if (normalized.trim() === "") {
    return { field, message: `'${field}' may not be only white space`, type: "passwordWeak" };
  }
  if (new Set(normalized).size < MIN_DISTINCT_PASSWORD_CHARS) {
    return {
      field,
      message: `'${field}' needs at least ${MIN_DISTINCT_PASSWORD_CHARS} different characters`,
      type: "passwordWeak",
    };
  }
  return undefined;
}

/** The account fields' validator schemas, which the rules above then check further (`checkAccountInput`). */
export const PASSWORD = { type: "string", min: 10, max: 128 } as const;
export const EMAIL = { type: "email", normalize: true, max: 320 } as const;
export const ROLE_NAME = { type: "string", pattern: /^[a-z][a-z0-9_-]{0,63}$/ } as const;

/** 422 naming every field that breaks the account rules above. */
export function checkAccountInput(
  { email, displayName, password }: { email?: string; displayName?: string; password?: string },
  passwordField = "password",
): void {
  const problems = [
    email === undefined ? undefined : emailProblem("email", normalizeEmail(email)),
    displayName === undefined ? undefined : displayNameProblem("displayName", normalizeDisplayName(displayName)),
    password === undefined ? undefined : passwordProblem(passwordField, password),
  ].filter((problem): problem is FieldProblem => problem !== undefined);
  if (problems.length > 0) throw invalidFields("Parameters validation error!", problems);
}
