/**
 * One shape for everything (docs/api.md), checked as a class, not route by route: every GET operation of the OpenAPI
 * document is called as admin; every list answers its documented list shape and takes the paging parameters of that
 * shape, no GET answers a bare array, and bodies the gateway cannot read answer the one error shape.
 */
import { randomUUID } from "node:crypto";
import type { Client } from "pg";
import { parseEvents, type StreamEvent } from "../../lib/event-stream";
import type { CursorPage, Page } from "../../lib/paging";
import { type ErrorBody, json } from "../../support/nodes";
import { withNode } from "../support/suite";

interface Parameter {
  name: string;
  in: "path" | "query";
  required: boolean;
  schema: { type?: string; format?: string; enum?: unknown[]; minimum?: number };
}

interface GetOperation {
  operationId: string;
  parameters?: Parameter[];
  responses: Record<string, { content?: { "application/json"?: { schema?: { $ref?: string } } } }>;
}

interface Walked {
  path: string;
  operation: GetOperation;
  /** The list shape its 200 response names, if any. */
  shape?: "Page" | "CursorPage";
}

const node = withNode({ RATE_LIMIT_USER: "1000000" });
let walked: Walked[];
let logsDb: Client;

/** A value a parameter takes, for the required ones (the walk asks for lists, not for particular rows). */
function sample(parameter: Parameter): string {
  const { schema } = parameter;
  if (schema.format === "uuid") return randomUUID();
  if (schema.enum) return String(schema.enum[0]);
  if (schema.type === "integer" || schema.type === "number") return String(Math.max(1, schema.minimum ?? 1));
  return "order";
}

function urlOf({ path, operation }: Walked, query: Record<string, string> = {}): string {
  const params = operation.parameters ?? [];
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) =>
    encodeURIComponent(sample(params.find((parameter) => parameter.name === name)!)),
  );
  const search = new URLSearchParams(query);
  for (const parameter of params) {
    if (parameter.in === "query" && parameter.required && !search.has(parameter.name)) {
      search.set(parameter.name, sample(parameter));
    }
  }
  return search.size > 0 ? `${filled}?${search}` : filled;
}

const get = (url: string) => node.send("GET", url);

beforeAll(async () => {
  logsDb = await node.database("logs");
  const doc = await json<{ paths: Record<string, Record<string, GetOperation>> }>(
    await fetch(`${node.base}/api/openapi.json`),
  );
  walked = Object.entries(doc.paths).flatMap(([path, methods]) => {
    const operation = methods.get;
    if (!operation) return [];
    const ref = operation.responses["200"]?.content?.["application/json"]?.schema?.$ref;
    const shape = ref === "#/components/schemas/Page" || ref === "#/components/schemas/CursorPage";
    return [{ path, operation, ...(shape ? { shape: ref.split("/").at(-1) as Walked["shape"] } : {}) }];
  });
});

describe("lists", () => {
  it("are declared as lists in the OpenAPI document, every one of them", () => {
    const lists = walked.filter((route) => route.shape).map((route) => `${route.path} ${route.shape}`);
    // The walk below covers what the document declares: a list that forgot its declaration must not slip past it.
    expect(lists).toEqual(
      expect.arrayContaining([
        "/api/products Page",
        "/api/orders Page",
        "/api/payments Page",
        "/api/shipping Page",
        "/api/exec/rules Page",
        "/api/exec/tasks Page",
        "/api/dlq Page",
        "/api/dlq/stats Page",
        "/api/dlq/replays Page",
        "/api/dlq/replays/{id}/letters Page",
        "/api/audit Page",
        "/api/audit/schemas Page",
        "/api/audit/events CursorPage",
        "/api/audit/streams/{streamType}/{streamId} CursorPage",
        "/api/logs Page",
        "/api/logs/tail CursorPage",
        "/api/alerts Page",
        "/api/sagas Page",
        "/api/auth/users Page",
        "/api/auth/roles Page",
        "/api/auth/clients Page",
      ]),
    );
  });

  it("answer their documented shape, exactly, with the paging parameters of that shape", async () => {
    const lists = walked.filter((route) => route.shape);
    for (const route of lists) {
      const res = await get(urlOf(route, route.shape === "Page" ? { page: "1", pageSize: "1" } : { pageSize: "1" }));
      const body = await json<Record<string, unknown>>(res);
      const seen = { operation: route.operation.operationId, status: res.status, body };
      expect(seen).toMatchObject({ status: 200 });
      if (route.shape === "Page") {
        const page = body as unknown as Page<unknown>;
        expect(Object.keys(page).sort()).toEqual(["page", "pageSize", "rows", "total", "totalPages"]);
        expect(seen).toMatchObject({ body: { page: 1, pageSize: 1, totalPages: page.total } });
        expect(page.rows.length).toBeLessThanOrEqual(1);
        expect(Number.isInteger(page.total)).toBe(true);
      } else {
        const page = body as unknown as CursorPage<unknown>;
        expect(Object.keys(page).sort()).toEqual(["hasMore", "nextCursor", "pageSize", "rows"]);
        expect(seen).toMatchObject({
          body: { pageSize: 1, nextCursor: expect.any(String), hasMore: expect.any(Boolean) },
        });
        expect(page.rows.length).toBeLessThanOrEqual(1);
      }
    }
  });

  it("refuse paging parameters of the other shape (422 naming them), so a client cannot mix them up", async () => {
    for (const route of walked.filter((item) => item.shape)) {
      const res = await get(urlOf(route, route.shape === "Page" ? { after: "0" } : { page: "1" }));
      expect({ operation: route.operation.operationId, status: res.status }).toMatchObject({ status: 422 });
      expect(await json<ErrorBody>(res)).toMatchObject({ type: "VALIDATION_ERROR" });
    }
  });

  it("never come back as a bare array from any GET", async () => {
    for (const route of walked.filter((item) => !item.path.includes("{") || item.shape)) {
      const res = await get(urlOf(route));
      const body: unknown = await res.json();
      expect({ operation: route.operation.operationId, array: Array.isArray(body) }).toEqual({
        operation: route.operation.operationId,
        array: false,
      });
    }
  });

  it("walk a stream by cursor: each nextCursor leads on, hasMore until the end, and past the end it stays put", async () => {
    const { rows: inserted } = await logsDb.query<{ id: string }>(
      `INSERT INTO log_records (time, level, node_id, module, message)
       SELECT now(), 'info', 'shape-node', 'shape-walk', 'record ' || n FROM generate_series(1, 5) AS n RETURNING id`,
    );
    const ids = inserted.map((row) => Number(row.id));
    const pages: CursorPage<{ id: number }>[] = [];
    let after = "0";
    for (let guard = 0; guard < 10; guard += 1) {
      const page = await json<CursorPage<{ id: number }>>(
        await get(`/api/logs/tail?service=shape-walk&after=${after}&pageSize=2`),
      );
      pages.push(page);
      after = page.nextCursor;
      if (!page.hasMore) break;
    }
    expect(pages.map((page) => page.rows.map((row) => row.id))).toEqual([
      ids.slice(0, 2),
      ids.slice(2, 4),
      ids.slice(4),
    ]);
    expect(pages.map((page) => [page.nextCursor, page.hasMore])).toEqual([
      [String(ids[1]), true],
      [String(ids[3]), true],
      [String(ids[4]), false],
    ]);
    expect(await json(await get(`/api/logs/tail?service=shape-walk&after=${after}&pageSize=2`))).toEqual({
      rows: [],
      pageSize: 2,
      nextCursor: String(ids[4]),
      hasMore: false,
    });
  });

  it("are what the live tail reads: records stored after it opened arrive as events, in order", async () => {
    const controller = new AbortController();
    const res = await fetch(`${node.base}/api/logs/stream?service=shape-sse`, {
      headers: { authorization: `Bearer ${node.token}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const { rows: inserted } = await logsDb.query<{ id: string }>(
      `INSERT INTO log_records (time, level, node_id, module, message)
       SELECT now(), 'info', 'shape-node', 'shape-sse', 'tailed ' || n FROM generate_series(1, 3) AS n RETURNING id`,
    );
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const received: StreamEvent[] = [];
    let buffer = "";
    try {
      while (received.filter((event) => event.event === "log").length < 3) {
        const { value, done } = await reader.read();
        if (done) break;
        const parsed = parseEvents(buffer + value);
        received.push(...parsed.events);
        buffer = parsed.rest;
      }
    } finally {
      controller.abort();
    }
    expect(received.filter((event) => event.event === "log").map((event) => event.id)).toEqual(
      inserted.map((row) => row.id),
    );
  });

  it("walk the event store to its end the same way", async () => {
    const seen: number[] = [];
    let after = "0";
    for (let guard = 0; guard < 1000; guard += 1) {
      const page = await json<CursorPage<{ position: number }>>(
        await get(`/api/audit/events?after=${after}&pageSize=2`),
      );
      seen.push(...page.rows.map((event) => event.position));
      if (!page.hasMore) {
        expect(page.nextCursor).toBe(seen.length > 0 ? String(seen.at(-1)) : after);
        break;
      }
      after = page.nextCursor;
    }
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe("bodies the gateway cannot read answer the one error shape", () => {
  const post = (body: string, contentType = "application/json") =>
    fetch(`${node.base}/api/products`, {
      method: "POST",
      headers: { "content-type": contentType, authorization: `Bearer ${node.token}` },
      body,
    });

  const keysOf = (body: object) => Object.keys(body).sort();

  it("answers malformed JSON 400 MALFORMED_JSON with the parser's reason", async () => {
    const res = await post('{"sku": "X-1", "name": }');
    expect(res.status).toBe(400);
    const body = await json<ErrorBody>(res);
    expect(keysOf(body)).toEqual(["code", "data", "message", "name", "type"]);
    expect(body).toMatchObject({
      name: "MalformedJsonError",
      code: 400,
      type: "MALFORMED_JSON",
      message: "The request body is not valid JSON",
      data: { reason: expect.any(String) },
    });
  });

  it("answers a body over the limit 413 PAYLOAD_TOO_LARGE naming the limit", async () => {
    const res = await post(JSON.stringify({ sku: "X-2", name: "x".repeat(1_100_000) }));
    expect(res.status).toBe(413);
    const body = await json<ErrorBody>(res);
    expect(keysOf(body)).toEqual(["code", "data", "message", "name", "type"]);
    expect(body).toMatchObject({
      name: "PayloadTooLargeError",
      code: 413,
      type: "PAYLOAD_TOO_LARGE",
      data: { limit: "1mb" },
    });
  });

  it("answers a body that is not JSON 415 UNSUPPORTED_MEDIA_TYPE naming the content type", async () => {
    const res = await post("sku=X-3", "application/x-www-form-urlencoded");
    expect(res.status).toBe(415);
    const body = await json<ErrorBody>(res);
    expect(keysOf(body)).toEqual(["code", "data", "message", "name", "type"]);
    expect(body).toMatchObject({
      name: "UnsupportedMediaTypeError",
      code: 415,
      type: "UNSUPPORTED_MEDIA_TYPE",
      data: { contentType: "application/x-www-form-urlencoded" },
    });
  });
});
