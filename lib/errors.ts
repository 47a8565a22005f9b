/**
 * The project's one error module. Client mistakes are `MoleculerClientError`s with a fixed HTTP code, an UPPER_SNAKE
 * `type` and a `data` object; transient faults are `MoleculerRetryableError`s so the retry policy retries them and
 * nothing else. Moleculer's own `ValidationError` (422, `VALIDATION_ERROR`, data: the offending fields) is used for
 * parameter validation and re-exported here so services import errors from one place.
 */
import { Errors } from "moleculer";

export const { ValidationError, MoleculerClientError, MoleculerRetryableError, MoleculerError } = Errors;

export interface FieldProblem {
  field: string;
  message: string;
  type: string;
  actual?: unknown;
}

/** 404: the addressed entity does not exist (or the caller may not know it exists). */
export class NotFoundError extends Errors.MoleculerClientError {
  constructor(entity: string, id: string) {
    super(`${entity} ${id} not found`, 404, "NOT_FOUND", { entity, id });
    this.name = "NotFoundError";
  }
}

/** 409: the request conflicts with the current state (a duplicate key, a stale version). */
export class ConflictError extends Errors.MoleculerClientError {
  constructor(
    message: string,
    type: "DUPLICATE" | "STALE_VERSION" | "CONFLICT" | "INCOMPATIBLE_SCHEMA" | "SCHEMA_VERSION_CONFLICT" | "LAST_ADMIN",
    data: Record<string, unknown>,
  ) {
    super(message, 409, type, data);
    this.name = "ConflictError";
  }
}

/** 402: the payment provider refused the charge (a business outcome: the order cannot be paid this way). */
export class PaymentDeclinedError extends Errors.MoleculerClientError {
  constructor(reason: string, data: Record<string, unknown>) {
    super(`Payment declined: ${reason}`, 402, "PAYMENT_DECLINED", { reason, ...data });
    this.name = "PaymentDeclinedError";
  }
}

/** 422: the carrier does not ship there (a business outcome: the order cannot be shipped). */
export class UnsupportedDestinationError extends Errors.MoleculerClientError {
  constructor(country: string) {
    super(`No shipping to ${country}`, 422, "UNSUPPORTED_DESTINATION", { field: "shippingAddress.country", country });
    this.name = "UnsupportedDestinationError";
  }
}

/** 422: the stock cannot fill an order's line (a business outcome: the order is cancelled, nothing was taken). */
export class InsufficientStockError extends Errors.MoleculerClientError {
  constructor(reason: string, data: Record<string, unknown>) {
    super(`Not enough stock: ${reason}`, 422, "INSUFFICIENT_STOCK", { reason, ...data });
    this.name = "InsufficientStockError";
  }
}

/** 428: a write that must say which version it is based on did not. */
export class PreconditionRequiredError extends Errors.MoleculerClientError {
  constructor(message: string) {
    super(message, 428, "PRECONDITION_REQUIRED", { header: "If-Match", field: "version" });
    this.name = "PreconditionRequiredError";
  }
}

/** 422 with the offending fields, for rules the parameter schema cannot express. */
export function invalidFields(message: string, fields: FieldProblem[]): Errors.ValidationError {
  return new Errors.ValidationError(message, "VALIDATION_ERROR", fields);
}

/**
 * Validation problems as clients read them: fastest-validator reports unknown fields under `$$strict` as one problem
 * with no `field` and the names in `actual` ("a, b"); this names each unknown field as its own problem.
 */
export function nameUnknownFields(problems: unknown): unknown {
  if (!Array.isArray(problems)) return problems;
  return problems.flatMap((problem: FieldProblem & { field?: string }) => {
    if (problem?.type !== "objectStrict" || typeof problem.actual !== "string") return [problem];
    const parent = problem.field ? `${problem.field}.` : "";
    return problem.actual.split(",").map((name) => ({ ...problem, field: `${parent}${name.trim()}` }));
  });
}

/** 503, retryable: a dependency (database, transporter) is unreachable right now. */
export class DependencyUnavailableError extends Errors.MoleculerRetryableError {
  constructor(dependency: string, cause: string) {
    super(`${dependency} is unavailable: ${cause}`, 503, "DEPENDENCY_UNAVAILABLE", { dependency, cause });
    this.name = "DependencyUnavailableError";
  }
}

/** 503, not retried: the node answers but is not ready; `data.failing` names the failing checks. */
export class NotReadyError extends Errors.MoleculerError {
  constructor(failing: string[], data: Record<string, unknown>) {
    super(`Not ready: ${failing.join(", ")}`, 503, "NOT_READY", { failing, ...data });
    this.name = "NotReadyError";
  }
}

/** 401: no identity, or one that cannot be trusted (bad signature, expired, revoked). */
export class UnauthorizedError extends Errors.MoleculerClientError {
  constructor(
    message: string,
    type: "UNAUTHORIZED" | "INVALID_TOKEN" | "INVALID_CREDENTIALS" | "TOKEN_REUSED" = "UNAUTHORIZED",
    data: Record<string, unknown> = {},
  ) {
    super(message, 401, type, data);
    this.name = "UnauthorizedError";
  }
}

/** 403: the caller is known but may not do this. */
export class ForbiddenError extends Errors.MoleculerClientError {
  constructor(message: string, data: Record<string, unknown>) {
    super(message, 403, "FORBIDDEN", data);
    this.name = "ForbiddenError";
  }
}

/**
 * 403: the password is right but must be changed before the account may sign in (a generated one); `data` names the
 * endpoint that changes it.
 */
export class PasswordChangeRequiredError extends Errors.MoleculerClientError {
  constructor() {
    super("The password must be changed before signing in", 403, "PASSWORD_CHANGE_REQUIRED", {
      changePassword: "POST /api/auth/password",
    });
    this.name = "PasswordChangeRequiredError";
  }
}

/**
 * 503, not retried: this node cannot sign tokens, because AUTH_KEY_SECRET does not open the signing keys stored in
 * the auth database (a changed or mistyped secret). Retrying on another node with the right secret helps; here not.
 */
export class SigningKeyUnavailableError extends Errors.MoleculerError {
  constructor(kid: string) {
    super(
      `AUTH_KEY_SECRET does not open signing key ${kid} stored in the auth database`,
      503,
      "SIGNING_KEY_UNAVAILABLE",
      { kid },
    );
    this.name = "SigningKeyUnavailableError";
  }
}

/** 429: too many requests; `retryAfter` in seconds goes into the `Retry-After` header. */
export class RateLimitedError extends Errors.MoleculerClientError {
  constructor(limit: string, retryAfter: number) {
    super("Too many requests", 429, "RATE_LIMITED", { limit, retryAfter });
    this.name = "RateLimitedError";
  }
}

/** The error codes of RFC 6749 §5.2, which the token endpoint answers with instead of the usual shape. */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope";

/** A token endpoint error: `type` is the RFC 6749 code; 401 for `invalid_client`, 400 otherwise. */
export class OAuthError extends Errors.MoleculerClientError {
  constructor(code: OAuthErrorCode, description: string) {
    super(description, code === "invalid_client" ? 401 : 400, code, { error: code, error_description: description });
    this.name = "OAuthError";
  }
}

/** 422: a value the database cannot hold (SQLSTATE class 22, data exception, or 54, program limit exceeded). */
export class InvalidValueError extends Errors.MoleculerClientError {
  constructor(reason: string, sqlState: string) {
    super(`A value cannot be stored: ${reason}`, 422, "INVALID_VALUE", { reason, sqlState });
    this.name = "InvalidValueError";
  }
}

/** 422 naming every string (by its path) that holds text PostgreSQL cannot store: NUL, or an unpaired surrogate. */
export function unstorableText(fields: FieldProblem[]): Errors.ValidationError {
  return new Errors.ValidationError("The request holds text that cannot be stored", "UNSTORABLE_TEXT", fields);
}

/** 400: JSON nested deeper than the gateway accepts (deep enough for any request; deeper only exhausts the stack). */
export class JsonTooDeepError extends Errors.MoleculerClientError {
  constructor(field: string, maxDepth: number) {
    super(`JSON nested deeper than ${maxDepth} levels`, 400, "JSON_TOO_DEEP", { field, maxDepth });
    this.name = "JsonTooDeepError";
  }
}

/** 413: a request body, or a JSON value in it, larger than the gateway accepts. */
export class PayloadTooLargeError extends Errors.MoleculerClientError {
  constructor(limit: string) {
    super(`The request is larger than ${limit}`, 413, "PAYLOAD_TOO_LARGE", { limit });
    this.name = "PayloadTooLargeError";
  }
}

/** 400: a request body that is not well-formed JSON; `data.reason` is what the parser found. */
export class MalformedJsonError extends Errors.MoleculerClientError {
  constructor(reason: string) {
    super("The request body is not valid JSON", 400, "MALFORMED_JSON", { reason });
    this.name = "MalformedJsonError";
  }
}

/** 415: a request body on `/api` that is not JSON, or in a charset or encoding the gateway does not read. */
export class UnsupportedMediaTypeError extends Errors.MoleculerClientError {
  constructor(message: string, data: Record<string, unknown>) {
    super(message, 415, "UNSUPPORTED_MEDIA_TYPE", data);
    this.name = "UnsupportedMediaTypeError";
  }
}

/**
 * 400: a request body the gateway could not read for another reason (an aborted upload, a length that does not
 * match); `type` is the body parser's own, in UPPER_SNAKE (`REQUEST_ABORTED`, `REQUEST_SIZE_INVALID`).
 */
export class UnreadableBodyError extends Errors.MoleculerClientError {
  constructor(message: string, type: string) {
    super(message, 400, type, {});
    this.name = "UnreadableBodyError";
  }
}

/** A node that left is noticed within the heartbeat timeout and a breaker half-opens after 10 s: a few seconds. */
const SERVICE_RETRY_AFTER_SECONDS = 5;

/**
 * 503: the addressed service has no endpoint that can take calls right now (none running, or its breaker open);
 * `data` names it and says when to try again (`Retry-After`).
 */
export class ServiceUnavailableError extends Errors.MoleculerError {
  constructor(target: { service: string; action?: string }) {
    super(`The ${target.service} service is unavailable right now`, 503, "SERVICE_UNAVAILABLE", {
      ...target,
      retryAfter: SERVICE_RETRY_AFTER_SECONDS,
    });
    this.name = "ServiceUnavailableError";
  }
}

/**
 * 503, not retried by the caller's broker: the work already accepted is more than the node takes on; `retryAfter` in
 * seconds goes into the `Retry-After` header. Refused at intake, before anything is written, so nothing is dropped.
 */
export class OverloadedError extends Errors.MoleculerError {
  constructor(backlog: number, limit: number, retryAfter: number) {
    super("Too much work in progress: try again later", 503, "OVERLOADED", { backlog, limit, retryAfter });
    this.name = "OverloadedError";
  }
}

/** SQLSTATE classes that say the database is out of reach or out of resources (not what was asked of it). */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0|58)/;
/** Sequelize's connection errors (its ConnectionError and subclasses, and pool acquire timeouts). */
const CONNECTION_ERROR =
  /^Sequelize(Connection\w*|ConnectionRefused|HostNotFound|HostNotReachable|InvalidConnection|AccessDenied)Error$/;

/**
 * What node-postgres says when the connection under a query went away (the server restarted, the network dropped),
 * and Sequelize when the service's pool is already closed (the service stopping while a call still reaches it): no
 * SQLSTATE, only these messages.
 */
const CONNECTION_LOST =
  /^(Connection terminated|Client has encountered a connection error|ConnectionManager\.getConnection was called after the connection manager was closed)/;

interface DatabaseFailure extends Error {
  code?: unknown;
  parent?: { code?: unknown; message?: string };
}

/**
 * What a database error means for the caller, as one of our errors: a value the database cannot hold (SQLSTATE
 * class 22 or 54, e.g. an integer out of range, invalid text) is the client's 422; an unreachable or overloaded
 * database (class 08, 53, 57P0x, 58, a refused or lost connection, a query cancelled by its timeout) a retryable 503. Anything
 * else, and errors that are not the database's, are returned as they are.
 */
export function fromDatabaseError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof Errors.MoleculerError) return err;
  const failure = err as DatabaseFailure;
  const sqlState = [failure.parent?.code, failure.code].find(
    (code): code is string => typeof code === "string" && /^[0-9A-Z]{5}$/.test(code),
  );
  const reason = failure.parent?.message ?? failure.message;
  if (sqlState && /^(22|54)/.test(sqlState)) return new InvalidValueError(reason, sqlState);
  const unreachable =
    (sqlState && (UNAVAILABLE_SQLSTATE.test(sqlState) || sqlState === "57014")) ||
    CONNECTION_ERROR.test(err.name) ||
    (!sqlState && CONNECTION_LOST.test(reason));
  if (unreachable) {
    return new DependencyUnavailableError("database", reason);
  }
  return err;
}
