/**
 * The alerts service on the embedded default's wiring (one node, in-memory channels, the real PostgreSQL), sending to
 * a real SMTP server and a real webhook receiver on loopback: a dead letter fires one alert by both channels (retried
 * while they refuse), repeated evaluations add nothing, discarding it sends one resolved notice, a relapse within the
 * cool-down is recorded but not sent; a circuit breaker opening and closing, and a burst of error logs, alert too.
 */
import type { ServiceSchema } from "moleculer";
import type { Client } from "pg";
import { createEnvelope } from "../../lib/events";
import type { Incident, IncidentPage, Notice } from "../../contracts/alerts";
import type { DeadLetterPage } from "../../contracts/dead-letters";
import type { Saga } from "../../contracts/sagas";
import { registerCustomer } from "../../support/api";
import { type ErrorBody, json, waitFor } from "../../support/nodes";
import { startSmtpSink, startWebhookReceiver, type SmtpSink, type WebhookReceiver } from "../support/sinks";
import { withNode } from "../support/suite";

let smtp: SmtpSink;
let webhook: WebhookReceiver;
let alertsDb: Client;

const incidents = async (query = "") => json<IncidentPage>(await send("GET", `/api/alerts${query}`));
const subjects = () => smtp.messages.map((mail) => mail.subject);
const webhookTexts = () => webhook.bodies.map((body) => (body as { text: string }).text.split("\n")[0]);
/** Time for something that must not happen (a notice, an incident): an absence has no condition to wait on. */
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A message no consumer can accept: exec dead-letters it at once. */
async function deadLetter(): Promise<string> {
  const before = await json<DeadLetterPage>(await send("GET", "/api/dlq?status=PENDING"));
  await node.broker.sendToChannel("order.created", { not: "an envelope" });
  const page = await waitFor(async () => {
    const now = await json<DeadLetterPage>(await send("GET", "/api/dlq?status=PENDING"));
    return now.total > before.total ? now : undefined;
  });
  return page.rows[0].id;
}

/**
 * The sagas the `saga-failures` rule sees: `sagas.list` answering the FAILED ones the test parks. (Parking real sagas
 * is the saga suites' subject; here the point is what the alerts service makes of them.)
 */
const parked: Pick<Saga, "id" | "definition" | "subjectId" | "status" | "step" | "reason">[] = [];
const parkedSagasService: ServiceSchema = {
  name: "sagas",
  actions: {
    list: {
      permissions: ["sagas:read"],
      handler: () => ({ rows: [...parked], total: parked.length, page: 1, pageSize: 100, totalPages: 1 }),
    },
  },
};

beforeAll(async () => {
  [smtp, webhook] = await Promise.all([startSmtpSink(), startWebhookReceiver()]);
});

const node = withNode(
  () => ({
    SERVICES: "api,auth,exec,dlq,alerts",
    ALERT_INTERVAL: "250",
    ALERT_COOLDOWN: "60000",
    ALERT_DLQ_DEPTH: "1",
    ALERT_ERROR_LOGS: "3",
    ALERT_SMTP_URL: smtp.url,
    ALERT_EMAIL_FROM: "alerts@aicunet.test",
    ALERT_EMAIL_TO: "ops@aicunet.test,oncall@aicunet.test",
    ALERT_WEBHOOK_URL: webhook.url,
  }),
  { services: [parkedSagasService] },
);
const { send } = node;

beforeAll(async () => {
  alertsDb = await node.database("alerts");
});

// After the node's own afterAll: it stops before the sinks it sends to.
afterAll(async () => {
  await Promise.all([smtp?.stop(), webhook?.stop()]);
});

describe("dead letters", () => {
  it("alerts once by email and webhook, retrying while both refuse, and sends one resolved notice", async () => {
    smtp.refusing = true;
    webhook.refusing = true;
    const id = await deadLetter();
    const firing = await waitFor(async () => {
      const page = await incidents("?rule=dlq-depth&status=FIRING");
      return page.total === 1 ? page.rows[0] : undefined;
    });
    expect(firing).toMatchObject({ key: "order.created", notified: true, resolvedAt: null });
    expect(firing.summary).toBe("1 dead letter(s) pending on order.created");
    // Both channels refused the first try: the notifications wait to be sent again, nothing was lost.
    await waitFor(async () => {
      const { rows } = await alertsDb.query("SELECT channel, attempts, status FROM notifications ORDER BY channel");
      return rows.length === 2 && rows.every((row) => row.attempts >= 1 && row.status === "PENDING") ? true : undefined;
    });
    expect(smtp.messages).toEqual([]);
    smtp.refusing = false;
    webhook.refusing = false;
    await waitFor(async () => (smtp.messages.length === 1 && webhook.bodies.length === 1 ? true : undefined));
    expect(smtp.messages[0]).toMatchObject({
      from: "alerts@aicunet.test",
      to: ["ops@aicunet.test", "oncall@aicunet.test"],
      subject: "[AiCUnet] FIRING dlq-depth: 1 dead letter(s) pending on order.created",
    });
    expect(smtp.messages[0].text).toContain("Rule: dlq-depth (order.created)");
    expect(webhookTexts()).toEqual(["[AiCUnet] FIRING dlq-depth: 1 dead letter(s) pending on order.created"]);

    // The incident's page lists the notices sent; an operator acknowledges it, once, and it stays open.
    const detail = await json<Incident & { notices: Notice[] }>(await send("GET", `/api/alerts/${firing.id}`));
    expect(detail.notices).toEqual([
      expect.objectContaining({ kind: "firing", channel: "email", status: "SENT", sentAt: expect.any(String) }),
      expect.objectContaining({ kind: "firing", channel: "webhook", status: "SENT", attempts: expect.any(Number) }),
    ]);
    const acknowledged = await send("POST", `/api/alerts/${firing.id}/acknowledge`);
    expect(acknowledged.status).toBe(200);
    expect(await json<Incident>(acknowledged)).toMatchObject({
      status: "FIRING",
      acknowledgedBy: expect.stringMatching(/^user:/),
      acknowledgedAt: expect.any(String),
    });
    expect((await send("POST", `/api/alerts/${firing.id}/acknowledge`)).status).toBe(409);

    // Many evaluations later, still one incident and one message per channel.
    await settle(1500);
    expect((await incidents("?rule=dlq-depth")).total).toBe(1);
    expect(smtp.messages).toHaveLength(1);
    expect(webhook.bodies).toHaveLength(1);

    expect((await send("DELETE", `/api/dlq/${id}`, { reason: "alert test" })).status).toBe(200);
    await waitFor(async () => (smtp.messages.length === 2 && webhook.bodies.length === 2 ? true : undefined));
    expect(subjects()[1]).toBe("[AiCUnet] RESOLVED dlq-depth: 1 dead letter(s) pending on order.created");
    expect(webhookTexts()[1]).toBe(subjects()[1]);
    expect(await incidents("?rule=dlq-depth")).toMatchObject({ total: 1, rows: [{ status: "RESOLVED" }] });
    const resolved = await send("POST", `/api/alerts/${firing.id}/acknowledge`);
    expect(resolved.status).toBe(409);
    expect(await json<ErrorBody>(resolved)).toMatchObject({ message: "This incident has resolved" });
  });

  it("records a relapse within the cool-down without sending it", async () => {
    const id = await deadLetter();
    const relapse = await waitFor(async () => {
      const page = await incidents("?rule=dlq-depth&status=FIRING");
      return page.total === 1 ? page.rows[0] : undefined;
    });
    expect(relapse.notified).toBe(false);
    expect((await send("DELETE", `/api/dlq/${id}`, { reason: "alert test" })).status).toBe(200);
    await waitFor(async () => ((await incidents("?rule=dlq-depth&status=FIRING")).total === 0 ? true : undefined));
    await settle(800);
    expect(smtp.messages).toHaveLength(2);
    expect(webhook.bodies).toHaveLength(2);
    expect((await incidents("?rule=dlq-depth")).total).toBe(2);
  });
});

describe("other rules", () => {
  it("alerts on a circuit breaker that opens, and resolves when it closes", async () => {
    const sent = smtp.messages.length;
    const breaker = { nodeID: "payments-node-1", service: "payments", action: "payments.charge" };
    node.broker.broadcast("$circuit-breaker.opened", { ...breaker, failures: 6, count: 10, rate: 0.6 });
    await waitFor(async () => (smtp.messages.length === sent + 1 ? true : undefined));
    expect(smtp.messages[sent].subject).toBe(
      `[AiCUnet] FIRING circuit-breaker: Circuit breaker open for payments.charge on node payments-node-1 ` +
        `(seen from ${node.broker.nodeID})`,
    );
    node.broker.broadcast("$circuit-breaker.closed", breaker);
    await waitFor(async () => (smtp.messages.length === sent + 2 ? true : undefined));
    expect(smtp.messages[sent + 1].subject).toMatch(/^\[AiCUnet\] RESOLVED circuit-breaker: /);
  });

  it("alerts when error log records reach the threshold in the window", async () => {
    const sent = smtp.messages.length;
    const record = (message: string) => ({
      time: new Date().toISOString(),
      level: "error",
      nodeId: "orders-node-1",
      module: "orders",
      requestId: null,
      message,
      fields: null,
    });
    // What the log store publishes for each error record it stores.
    for (const message of ["first failure", "second failure"]) {
      await node.broker.sendToChannel(
        "log.error",
        createEnvelope("log.error", { record: record(message) }, envelopeOf()),
      );
    }
    await settle(800);
    expect((await incidents("?rule=error-rate")).total).toBe(0);
    await node.broker.sendToChannel(
      "log.error",
      createEnvelope("log.error", { record: record("third") }, envelopeOf()),
    );
    await waitFor(async () => (smtp.messages.length === sent + 1 ? true : undefined));
    expect(smtp.messages[sent].subject).toMatch(/^\[AiCUnet\] FIRING error-rate: 3 error log record\(s\) in the last/);
  });
});

describe("parked sagas", () => {
  it("alerts once per saga that parks, also while another is parked, and resolves each when it moves on", async () => {
    const sent = smtp.messages.length;
    const park = (id: string) =>
      parked.push({
        id,
        definition: "order",
        subjectId: `order-of-${id}`,
        status: "FAILED",
        step: "payment:compensate",
        reason: "payment:compensate failed after 3 attempt(s): refunds unavailable",
      });
    park("11111111-1111-4111-8111-111111111111");
    await waitFor(async () => (smtp.messages.length === sent + 1 ? true : undefined));
    park("22222222-2222-4222-8222-222222222222");
    await waitFor(async () => (smtp.messages.length === sent + 2 ? true : undefined));
    expect(subjects().slice(sent)).toEqual([
      "[AiCUnet] FIRING saga-failures: Saga 11111111-1111-4111-8111-111111111111 (order order-of-11111111-1111-4111-8111-111111111111) parked at payment:compensate: payment:compensate failed after 3 attempt(s): refunds unavailable",
      "[AiCUnet] FIRING saga-failures: Saga 22222222-2222-4222-8222-222222222222 (order order-of-22222222-2222-4222-8222-222222222222) parked at payment:compensate: payment:compensate failed after 3 attempt(s): refunds unavailable",
    ]);
    parked.splice(0, parked.length);
    await waitFor(async () => (smtp.messages.length === sent + 4 ? true : undefined));
    expect(
      subjects()
        .slice(sent + 2)
        .every((subject) => subject.startsWith("[AiCUnet] RESOLVED saga-failures: ")),
    ).toBe(true);
    expect(await incidents("?rule=saga-failures&status=RESOLVED")).toMatchObject({ total: 2 });
  });
});

describe("API", () => {
  it("lists the rules with their thresholds and channels", async () => {
    const res = await send("GET", "/api/alerts/rules");
    expect(res.status).toBe(200);
    const body = await json<{ channels: string[]; rules: { rule: string; open: number }[] }>(res);
    expect(body.channels).toEqual(["email", "webhook"]);
    expect(body.rules.map((rule) => rule.rule)).toEqual([
      "error-rate",
      "dlq-depth",
      "circuit-breaker",
      "saga-failures",
      "node-health",
    ]);
    expect(body.rules.find((rule) => rule.rule === "error-rate")?.open).toBe(1);
  });

  it("answers bad filters with 422 naming the field, and customers with 403", async () => {
    const bad = await send("GET", "/api/alerts?status=BURNING");
    expect(bad.status).toBe(422);
    const body = await json<ErrorBody>(bad);
    expect(body.type).toBe("VALIDATION_ERROR");
    expect((body.data as { field: string }[]).map((problem) => problem.field)).toEqual(["status"]);
    const customer = await registerCustomer(node.base, "cust@alerts.example");
    expect((await send("GET", "/api/alerts", undefined, customer)).status).toBe(403);
    const unknown = "6f1c2a4e-0000-4000-8000-000000000000";
    expect((await send("POST", `/api/alerts/${unknown}/acknowledge`, undefined, customer)).status).toBe(403);
    expect((await send("POST", `/api/alerts/${unknown}/acknowledge`)).status).toBe(404);
    expect((await send("GET", `/api/alerts/${unknown}`)).status).toBe(404);
    expect((await send("GET", "/api/alerts/not-an-id")).status).toBe(422);
  });
});

function envelopeOf() {
  return { source: "logs", correlationId: "alerts-test" };
}
