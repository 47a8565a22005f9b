/**
 * The web console in a real browser (Debian's Chromium through playwright-core) against the system started as the
 * README starts it (`npm start`, one process): sign in; the dashboard; an order that completes and one whose card is
 * declined, each with its saga timeline, audit entries and log lines; a dead letter replayed; the audit chain verified;
 * the live log tail paused; a customer who sees only their orders and gets 403 from the API for the rest; a session
 * that ends when the account is disabled; a password that must be changed at sign-in. Every page is checked with axe-core and saved as a screenshot.
 */
import type { Browser, Page } from "playwright-core";
import { Client } from "pg";
import type { Product } from "../../contracts/products";
import type { DeadLetterGroup, DeadLetterPage } from "../../contracts/dead-letters";
import { launchBrowser, newPage, screenshot, seriousViolations, signIn } from "../../support/browser";
import {
  TEST_ADMIN,
  dropScopeDatabases,
  isolation,
  json,
  killLeftoverNodes,
  nodeEnv,
  scopedDatabaseUrl,
  startNodeProcess,
  waitFor,
  type NodeProcess,
} from "../../support/nodes";
import { apiRequest, login, orderBody } from "../../support/api";

const scope = isolation();
let node: NodeProcess;
let base: string;
let browser: Browser;
let page: Page;

/** Calls the API as the admin; access tokens live 10 s here, so each call signs in afresh. */
const send = async (method: string, path: string, body?: unknown, token?: string) =>
  apiRequest(base, token ?? (await login(base)), method, path, body);

/** Opens a page from the navigation, checks it has no serious accessibility problem, and saves a screenshot. */
async function visit(link: string, name: string) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link }).click();
  await page.getByRole("heading", { level: 1, name: new RegExp(link.split(" ")[0]) }).waitFor();
  await page.waitForLoadState("networkidle").catch(() => undefined);
  expect(await seriousViolations(page)).toEqual([]);
  await screenshot(page, name);
}

async function placeOrderInUi(tag: string, paymentLabel: string): Promise<string> {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Orders" }).click();
  const form = page.getByRole("form", { name: "New order" });
  await form.getByLabel(/UI widget/).fill("1");
  await form.getByLabel("Name", { exact: true }).fill(tag);
  await form.getByLabel("Street").fill("1 Main St");
  await form.getByLabel("City").fill("Berlin");
  await form.getByLabel("Postal code").fill("10115");
  await form.getByLabel("Payment method").selectOption({ label: paymentLabel });
  await form.getByRole("button", { name: "Place order" }).click();
  await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
  return page.url().split("/").pop()!;
}

/** A rule whose action fails validation (its task has no title) for every order shipped to `shippedTo`. */
async function addBrokenRule(name: string, shippedTo: string, kind: string) {
  const rule = await send("POST", "/api/exec/rules", {
    name,
    event: "order.created",
    condition: [{ path: "$.payload.order.shippingAddress.name", op: "eq", value: shippedTo }],
    action: "exec.tasks.create",
    params: { kind, subject: "$.payload.order.id" },
  });
  expect(rule.status).toBe(201);
}

beforeAll(async () => {
  node = await startNodeProcess(
    nodeEnv(scope, {
      SERVICES: "",
      TRACING_EXPORTER: "event",
      // The dead letters the suite leaves pending open an alert within seconds.
      ALERT_INTERVAL: "2000",
      // Short-lived access tokens, so the console's silent refresh runs during the suite.
      ACCESS_TOKEN_TTL: "10",
    }),
    { viaNpmStart: true, timeoutMs: 120_000 },
  );
  base = `http://127.0.0.1:${node.port}`;
  const res = await send("POST", "/api/products", {
    sku: "UI-1",
    name: "UI widget",
    price: { amount: 1250, currency: "EUR" },
    stock: 1000,
  });
  expect(res.status).toBe(201);
  await json<Product>(res);
  browser = await launchBrowser();
  page = await newPage(browser, { width: 1280, height: 900 });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await node?.stop("SIGINT");
  await killLeftoverNodes();
  await dropScopeDatabases(scope.prefix);
});

describe("as an operator (the admin)", () => {
  it("signs in and sees the dashboard's health and figures", async () => {
    await page.goto(`${base}/`);
    await page.getByRole("heading", { name: "Sign in to AiCUnet" }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "login");
    await signIn(page, base, TEST_ADMIN.email, TEST_ADMIN.password);
    await page.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
    await page.getByRole("table", { name: "Nodes" }).waitFor();
    expect(await page.getByRole("table", { name: "Nodes" }).textContent()).toContain("api");
    expect(await page.getByTestId("tile-Dead letters pending").textContent()).toMatch(/^\d+$/);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "dashboard");
    // A tile opens the list behind its figure, filtered to what it counts.
    await page.getByRole("link", { name: "Pending dead letters" }).click();
    await page.waitForURL(/\/operations\/dead-letters\?status=PENDING$/);
    await page.getByRole("heading", { level: 1, name: "Dead letters" }).waitFor();
    await page.goBack();
    await page.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
  });

  it("places an order that completes and shows its timeline, audit entries, log lines and trace id", async () => {
    await visit("Orders", "orders");
    const id = await placeOrderInUi("UI-OK", "Card (succeeds)");
    const title = page.getByRole("heading", { level: 1 });
    await expect(
      waitFor(async () => ((await title.textContent())?.includes("COMPLETED") ? true : undefined), 30_000),
    ).resolves.toBe(true);
    const steps = page.getByRole("list", { name: "Saga steps" });
    await steps.getByText("finish:completed").waitFor();
    expect(await steps.textContent()).toMatch(/payment.*ok.*shipping.*ok/s);
    const audit = page.getByRole("table", { name: "Audit entries" });
    await audit.getByText("payments.charge").waitFor({ timeout: 20_000 });
    expect(await audit.textContent()).toContain("orders.create");
    await page
      .getByRole("list", { name: "Log lines" })
      .getByText(/Charged 1250 EUR/)
      .waitFor({ timeout: 20_000 });
    const order = await json<{ requestId: string }>(await send("GET", `/api/orders/${id}`));
    expect(await page.getByTestId("trace-id").textContent()).toBe(order.requestId);
    // The trace as a waterfall: the saga's calls under the spans that made them, each with its offset.
    const spans = page.getByRole("table", { name: "Spans, each under its caller" });
    await spans.locator("tr[data-depth='1']").first().waitFor({ timeout: 20_000 });
    expect(await spans.locator("tr[data-depth='0']").count()).toBeGreaterThan(0);
    expect(await spans.textContent()).toMatch(/\+\d+ ms/);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "order-completed");
  });

  it("places an order with a declined card and shows it cancelled, its saga compensated", async () => {
    await placeOrderInUi("UI-DECLINED", "Card (declined)");
    const title = page.getByRole("heading", { level: 1 });
    await expect(
      waitFor(async () => ((await title.textContent())?.includes("CANCELLED") ? true : undefined), 30_000),
    ).resolves.toBe(true);
    const steps = page.getByRole("list", { name: "Saga steps" });
    await steps.getByText("finish:compensated").waitFor();
    expect(await steps.textContent()).toContain("rejected");
    expect(await page.getByText(/Saga\s*COMPENSATED/).count()).toBe(1);
    // A declined charge changed nothing to audit; the order's cancellation did.
    await page
      .getByRole("table", { name: "Audit entries" })
      .getByText("orders.transition")
      .waitFor({ timeout: 20_000 });
    await screenshot(page, "order-declined");

    // The list says why it failed and whose it is; its full id opens it from the search.
    const id = page.url().split("/").pop()!;
    const order = await json<{ statusReason: string }>(await send("GET", `/api/orders/${id}`));
    expect(order.statusReason).toBeTruthy();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Orders" }).click();
    const row = page.getByRole("table", { name: "Orders" }).getByRole("row").filter({ hasText: id });
    await row.getByText(order.statusReason).waitFor();
    await row.getByText("UI-DECLINED").waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    const find = page.getByRole("form", { name: "Find an order" });
    await find.getByLabel("Order id").fill("not-an-id");
    await find.getByRole("button", { name: "Open" }).click();
    await find.getByText("An order id is a UUID").waitFor();
    await find.getByLabel("Order id").fill(id.toUpperCase());
    await find.getByRole("button", { name: "Open" }).click();
    await page.waitForURL(new RegExp(`/orders/${id}$`));
  });

  it("replays a dead letter from its page, whose lineage shows the error it failed with again", async () => {
    await addBrokenRule("Broken rule for the UI test", "UI-DLQ", "broken");
    const orderId = await placeOrderInUi("UI-DLQ", "Card (succeeds)");
    const entry = await waitFor(async () => {
      const page = await json<DeadLetterPage>(await send("GET", "/api/dlq?status=PENDING&group=exec"));
      return page.rows[0];
    }, 20_000);
    // The order's page lists it.
    await page.goto(`${base}/orders/${orderId}`);
    const ofOrder = page.getByRole("table", { name: "Dead letters of the order" });
    await ofOrder.getByText("The 'title' field is required.").waitFor();
    await visit("Dead letters", "dead-letters");
    await page.getByRole("link", { name: `Open dead letter ${entry.id}` }).click();
    await page.waitForURL(new RegExp(`/operations/dead-letters/${entry.id}$`));
    await page.getByText("Never replayed.").waitFor();
    await page.getByRole("button", { name: "Replay", exact: true }).click();
    await page.getByText("Replayed.", { exact: true }).waitFor();
    // The rule is still broken: the replay fails again, and the letter's page says with what, once reloaded.
    await waitFor(async () => {
      const letter = await json<{ replays: { outcome: string }[] }>(await send("GET", `/api/dlq/${entry.id}`));
      return letter.replays[0]?.outcome === "FAILED" ? true : undefined;
    }, 20_000);
    await page.reload();
    const lineage = page.getByRole("table", { name: "Replays of this letter" }).getByRole("row").nth(1);
    await lineage.getByText("#1").waitFor();
    await lineage.getByText("FAILED").waitFor();
    await lineage.getByText(/VALIDATION_ERROR/).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "dead-letter");
  });

  it("replays a failure group as a server-side operation: dry-run count, typed confirmation, cancel, outcomes", async () => {
    await addBrokenRule("Broken rule for the group test", "UI-DLQ-G", "broken-group");
    const orders = [
      await placeOrderInUi("UI-DLQ-G", "Card (succeeds)"),
      await placeOrderInUi("UI-DLQ-G", "Card (succeeds)"),
      await placeOrderInUi("UI-DLQ-G", "Card (succeeds)"),
    ];
    // They fail as the test above's letter did (a task without a title): one group, with that letter in it again.
    const group = await waitFor(async () => {
      const page = await json<{ rows: DeadLetterGroup[] }>(await send("GET", "/api/dlq/groups?group=exec"));
      return page.rows.find((row) => orders.every((id) => row.orders.includes(id)) && row.count >= 4);
    }, 20_000);
    await visit("Dead letters", "dead-letter-groups");
    const row = page
      .getByRole("table", { name: "Failure groups" })
      .getByRole("row")
      .filter({ hasText: "The 'title' field is required." });
    // The group shows its count and links the first of its orders (the test above's, then these).
    await row.getByRole("button", { name: "Show letters" }).waitFor();
    expect(await row.getByRole("cell").first().textContent()).toBe(String(group.count));
    expect(await row.getByRole("link").count()).toBe(3);
    await row.getByText(`and ${group.orders.length - 3} more`).waitFor();
    await row.getByRole("button", { name: "Show letters" }).click();
    await page.waitForURL(new RegExp(`fingerprint=${group.fingerprint}`));
    await row.getByRole("button", { name: "Replay group…" }).click();
    // The dry run's count is what must be typed.
    await row.getByText(`The dry run found ${group.count} pending letters to replay.`).waitFor();
    const typed = row.getByLabel(`Type ${group.count} to replay them all`);
    await typed.fill(String(group.count + 1));
    expect(await row.getByRole("button", { name: `Replay ${group.count}` }).isDisabled()).toBe(true);
    await typed.fill(String(group.count));
    await row.getByLabel("Letters per second").fill("1");
    expect(await seriousViolations(page)).toEqual([]);
    await row.getByRole("button", { name: `Replay ${group.count}` }).click();

    // The operation's own page: cancelled while letters are still waiting (one is sent a second).
    await page.waitForURL(/\/operations\/dead-letters\/replays\/[0-9a-f-]{36}$/);
    const operationId = page.url().split("/").pop()!;
    await page.getByRole("button", { name: "Cancel the letters not sent yet" }).click();
    const progress = page.getByRole("status");
    await progress.getByText(/cancelled\./).waitFor();
    const [, sent, cancelled] = /(\d+) of \d+ sent, (\d+) cancelled\./.exec((await progress.textContent())!)!;
    expect(Number(sent) + Number(cancelled)).toBe(group.count);
    expect(Number(cancelled)).toBeGreaterThan(0);
    // The rule is still broken: the summary counts the letters sent as failed again, not as replayed.
    let operation: { status: string; outcomes: { pending: number } } | undefined;
    await waitFor(async () => {
      operation = await json(await send("GET", `/api/dlq/replays/${operationId}`));
      return operation!.outcomes.pending === 0 ? true : undefined;
    }, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; the operation: ${JSON.stringify(operation)}`);
    });
    expect(operation).toMatchObject({ status: "CANCELLED", outcomes: { resolved: 0, failed: Number(sent) } });
    await page.getByText(`0 resolved, ${sent} failed again, 0 pending.`).waitFor();
    // Its start and its cancel are in the audit trail, under the operation.
    const records = await waitFor(async () => {
      const trail = await json<{ rows: { name: string }[] }>(
        await send("GET", `/api/audit?entityType=replayOperation&entityId=${operationId}`),
      );
      return trail.rows.length === 2 ? trail.rows : undefined;
    }, 10_000);
    expect(records.map((record) => record.name).sort()).toEqual(["dlq.cancelReplay", "dlq.startReplay"]);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "replay-operation");

    // Who started and cancelled it, by name.
    await page.getByRole("region", { name: "Progress" }).getByText("Administrator", { exact: true }).first().waitFor();

    // Its page is still there after a reload, as the server keeps it.
    await page.reload();
    await page.getByText(`0 resolved, ${sent} failed again, 0 pending.`).waitFor();
  });

  it("acknowledges an open alert, and shows the notices sent about it", async () => {
    // The dead letters the tests above left pending are over the dlq-depth threshold.
    const incident = await waitFor(async () => {
      const open = await json<{ rows: { id: string; key: string }[] }>(
        await send("GET", "/api/alerts?status=FIRING&rule=dlq-depth"),
      );
      return open.rows[0];
    }, 20_000);
    await visit("Alerts", "alerts");
    const row = page
      .getByRole("table", { name: "Incidents" })
      .getByRole("row")
      .filter({ hasText: "dlq-depth" })
      .filter({ hasText: incident.key });
    await row.getByRole("button", { name: "Acknowledge" }).click();
    await row.getByText("acknowledged by").waitFor();
    expect(await row.getByRole("button", { name: "Acknowledge" }).count()).toBe(0);
    await row.getByRole("button", { name: "Notices" }).click();
    // The suite's node has no email or webhook configured: it says so.
    await page.getByText("No notices: no channel is configured.").waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    const acknowledged = await json<{ acknowledgedBy: string }>(await send("GET", `/api/alerts/${incident.id}`));
    expect(acknowledged.acknowledgedBy).toMatch(/^user:/);
  });

  it("compensates a running saga from the sagas page, after a confirmation", async () => {
    // The provider is too slow: the saga stays in its payment step, retrying, for about 15 s.
    const orderId = await placeOrderInUi("UI-SLOW", "Card (provider too slow)");
    await visit("Sagas", "sagas");
    await page.getByRole("combobox", { name: "Status" }).selectOption("RUNNING");
    const row = page.getByRole("table", { name: "Sagas" }).getByRole("row").filter({ hasText: orderId });
    await row.getByRole("button", { name: "Compensate…" }).click();
    const confirm = row.getByRole("group", { name: `Compensate the saga of order ${orderId}` });
    await confirm.getByText("the steps it has done are undone").waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await confirm.getByRole("button", { name: "Compensate now" }).click();
    await page.getByText(`Compensate: saga of order ${orderId} done.`).waitFor();
    const order = await waitFor(async () => {
      const current = await json<{ status: string; saga: { id: string; status: string; reason: string } }>(
        await send("GET", `/api/orders/${orderId}`),
      );
      return current.saga.status === "COMPENSATED" ? current : undefined;
    }, 30_000);
    expect(order.saga.reason).toMatch(/compensated by an operator/);
    const trail = await waitFor(async () => {
      const page = await json<{ rows: { name: string }[] }>(
        await send("GET", `/api/audit?entityType=saga&entityId=${order.saga.id}`),
      );
      return page.rows.some((record) => record.name === "sagas.compensate") ? page.rows : undefined;
    }, 10_000);
    expect(trail.length).toBeGreaterThan(0);

    // From the order to its saga's page, to what operators did to it, to that record's page.
    await page.goto(`${base}/orders/${orderId}`);
    await page.getByRole("link", { name: "The saga's page" }).click();
    await page.waitForURL(new RegExp(`/operations/sagas/${order.saga.id}$`));
    await page.getByRole("region", { name: "Where it is" }).getByText("COMPENSATED", { exact: true }).waitFor();
    await page.getByRole("list", { name: "Saga steps" }).getByText("finish:compensated").waitFor();
    expect(await page.getByRole("button", { name: /Compensate|Retry/ }).count()).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "saga");
    await page.getByRole("link", { name: "What operators did to it" }).click();
    const records = page.getByRole("table", { name: "Audit records" });
    const compensation = records.getByRole("row").filter({ hasText: "sagas.compensate" });
    await compensation.getByRole("link", { name: /^Open audit record \d+$/ }).click();
    await page.waitForURL(/\/operations\/audit\/[0-9a-f-]{36}$/);
    const me = await json<{ displayName: string }>(await send("GET", "/api/auth/me"));
    const record = page.getByRole("region", { name: /sagas\.compensate$/ });
    await record.getByText(me.displayName).waitFor();
    await record.getByRole("link", { name: order.saga.id }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "audit-record");
  });

  it("says how many orders are new since the list was shown, and shows them when asked", async () => {
    await visit("Orders", "orders");
    const table = page.getByRole("table", { name: "Orders" });
    await table.waitFor();
    const product = (await json<{ rows: { id: string }[] }>(await send("GET", "/api/products?search=UI-1"))).rows[0];
    const placed = await json<{ id: string }>(await send("POST", "/api/orders", orderBody(product.id, "UI-NEW")));
    // The list stays as it was; a banner counts what arrived.
    await page.getByText("1 new").waitFor({ timeout: 15_000 });
    expect(await table.getByRole("link", { name: placed.id }).count()).toBe(0);
    await page.getByRole("button", { name: "Show them" }).click();
    await table.getByRole("link", { name: placed.id }).waitFor();
    expect(await page.getByText("1 new").count()).toBe(0);

    // Keyboard: `?` lists the shortcuts, `/` goes to the first filter, `j` to the list's first row.
    await page.locator("body").press("?");
    await page.getByRole("dialog", { name: "Keyboard shortcuts" }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await page.locator("body").press("Escape");
    await page.locator("body").press("/");
    expect(await page.locator("main form :is(input, select):focus").count()).toBe(1);
    await page.locator("body").press("Escape");
    await table.getByRole("link").first().focus();
    await page.keyboard.press("j");
    // The header is row 0: the second order's row has the focus now.
    expect(await table.getByRole("row").nth(2).locator(":focus").count()).toBe(1);
  });

  it("verifies the audit chain", async () => {
    await visit("Audit trail", "audit");
    await page.getByRole("button", { name: "Verify the chain" }).click();
    await page.getByText(/The chain is intact: \d+ records checked\./).waitFor();
  });

  it("follows the logs live and pauses the tail", async () => {
    await visit("Logs", "logs");
    await page.getByRole("button", { name: "Follow live" }).click();
    await page.getByRole("button", { name: "Pause" }).waitFor();
    // The console's own requests are logged by the gateway: the tail fills by itself.
    await page.getByRole("table", { name: "Log records" }).getByText("access").first().waitFor({ timeout: 20_000 });
    await page.getByRole("button", { name: "Pause" }).click();
    await page.getByRole("button", { name: /^Resume \(\d+ new\)$/ }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByRole("button", { name: "Stop following" }).click();

    // Following again opens with the latest stored lines, not an empty table.
    await page.getByRole("button", { name: "Follow live" }).click();
    const tail = page.getByRole("table", { name: "Log records" });
    await tail.getByRole("row").nth(5).waitFor({ timeout: 5_000 });
    await page.getByRole("button", { name: "Stop following" }).click();

    // A request id is whole, and finds every record of its request.
    const link = page.getByRole("table", { name: "Log records" }).getByRole("link").first();
    const requestId = (await link.textContent())!;
    await link.click();
    await page.waitForURL(new RegExp(`requestId=${requestId}`));
    await page
      .getByRole("textbox", { name: "Request id" })
      .and(page.locator(`[value="${requestId}"]`))
      .waitFor();
    const ids = await page.getByRole("table", { name: "Log records" }).getByRole("link").allTextContents();
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids)).toEqual(new Set([requestId]));
  });

  it("opens the catalog and the users page", async () => {
    await visit("Catalog", "catalog");
    expect(await page.getByRole("table", { name: "Products" }).textContent()).toContain("UI widget");
    await visit("Users", "users");
    expect(await page.getByRole("table", { name: "Users" }).textContent()).toContain(TEST_ADMIN.email);
    // A new role, then a user who has it.
    const roleForm = page.getByRole("form", { name: "Role" });
    await roleForm.getByLabel("Role name").fill("auditor");
    await roleForm.getByLabel("Description").fill("Reads the audit trail");
    await roleForm.getByLabel(/^Permissions/).fill("audit:read");
    await roleForm.getByRole("button", { name: "Save role" }).click();
    await page.getByText("Role auditor saved.").waitFor();
    await page.getByRole("table", { name: "Roles" }).getByText("auditor", { exact: true }).waitFor();
    const userForm = page.getByRole("form", { name: "New user" });
    await userForm.getByLabel("Email").fill("auditor@example.com");
    await userForm.getByLabel("Name").fill("Auditor");
    await userForm.getByLabel(/^Password/).fill("an-auditor-password");
    await userForm.getByRole("checkbox", { name: "customer" }).uncheck();
    await userForm.getByRole("checkbox", { name: "auditor" }).check();
    await userForm.getByRole("button", { name: "Create" }).click();
    await page.getByText("Created auditor@example.com.").waitFor();
    const auditor = await login(base, { email: "auditor@example.com", password: "an-auditor-password" });
    expect((await send("GET", "/api/audit", undefined, auditor)).status).toBe(200);
    expect((await send("GET", "/api/dlq", undefined, auditor)).status).toBe(403);
  });

  it("adds, edits and disables a product, and disables a user, who then cannot sign in", async () => {
    await visit("Catalog", "catalog");
    const form = page.getByRole("form", { name: "New product" });
    await form.getByLabel("SKU").fill("UI-EDIT-1");
    await form.getByLabel("Name").fill("Editable widget");
    await form.getByLabel("Price").fill("4.20");
    await form.getByRole("button", { name: "Add" }).click();
    const row = page.getByRole("table", { name: "Products" }).getByRole("row").filter({ hasText: "UI-EDIT-1" });
    await row.getByRole("button", { name: "Edit" }).click();
    await row.getByLabel("Name").fill("Edited widget");
    await row.getByLabel("Price").fill("5.10");
    // The edit sends what changed, not the stock the form also shows (that would announce a stock change).
    const edit = page.waitForRequest((req) => req.method() === "PATCH" && req.url().includes("/api/products/"));
    await row.getByRole("button", { name: "Save" }).click();
    expect((await edit).postDataJSON()).toEqual({ name: "Edited widget", price: { amount: 510, currency: "EUR" } });
    await row.getByText("5.10 EUR").waitFor();
    await row.getByRole("button", { name: "Disable" }).click();
    await row.getByRole("button", { name: "Enable" }).waitFor();
    const { rows } = await json<{ rows: { id: string }[] }>(await send("GET", "/api/products?search=UI-EDIT-1"));
    expect(rows).toEqual([
      expect.objectContaining({ name: "Edited widget", price: { amount: 510, currency: "EUR" }, active: false }),
    ]);

    // The audit trail, filtered by an action's start, shows the edit field by field.
    await visit("Audit trail", "audit");
    await page.getByLabel("Action or event (its start)").fill("products.");
    await page.getByLabel("Entity id").fill(rows[0].id);
    const record = page
      .getByRole("table", { name: "Audit records" })
      .getByRole("row")
      .filter({ hasText: "products.update" })
      // Newest first: the disable, then the edit.
      .nth(1);
    await record.getByRole("button", { name: "Change" }).click();
    const changed = page.getByRole("table", { name: "What changed" });
    await changed
      .getByRole("row")
      .filter({ hasText: "price.amount" })
      .filter({ hasText: "420" })
      .getByText("510")
      .waitFor();
    await changed.getByRole("row").filter({ hasText: "name" }).getByText('"Edited widget"').waitFor();

    await visit("Users", "users");
    const users = page.getByRole("table", { name: "Users" });
    // No one disables their own account from the console.
    const own = users.getByRole("row").filter({ hasText: TEST_ADMIN.email });
    await own.getByText("Your own account cannot be disabled here.").waitFor();
    expect(await own.getByRole("button", { name: "Disable" }).count()).toBe(0);
    // Disabling someone else asks first; keeping them active changes nothing.
    const user = users.getByRole("row").filter({ hasText: "auditor@example.com" });
    await user.getByRole("button", { name: "Disable" }).click();
    await user.getByRole("button", { name: "Keep active" }).click();
    await user.getByRole("button", { name: "Disable" }).click();
    expect(await seriousViolations(page)).toEqual([]);
    await user.getByRole("button", { name: "Confirm disable" }).click();
    await page.getByText("auditor@example.com disabled.").waitFor();
    const refused = await fetch(`${base}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "auditor@example.com", password: "an-auditor-password" }),
    });
    expect(refused.status).toBe(401);
  });
});

/** Every page of the console, as [screenshot name, path, its heading's start], each showing a real item. */
async function consolePages(): Promise<[string, string, string][]> {
  const first = async (path: string) => (await json<{ rows: { id: string }[] }>(await send("GET", path))).rows[0].id;
  return [
    ["dashboard", "/dashboard", "Dashboard"],
    ["orders", "/orders", "Orders"],
    ["order", `/orders/${await first("/api/orders?pageSize=1")}`, "Order"],
    ["dead-letters", "/operations/dead-letters", "Dead letters"],
    ["dead-letter", `/operations/dead-letters/${await first("/api/dlq?pageSize=1")}`, "Dead letter"],
    [
      "replay-operation",
      `/operations/dead-letters/replays/${await first("/api/dlq/replays?pageSize=1")}`,
      "Replay operation",
    ],
    ["sagas", "/operations/sagas?status=", "Sagas"],
    ["saga", `/operations/sagas/${await first("/api/sagas?pageSize=1")}`, "Saga"],
    ["alerts", "/operations/alerts?status=", "Alerts"],
    ["audit", "/operations/audit", "Audit"],
    ["audit-record", `/operations/audit/${await first("/api/audit?pageSize=1")}`, "Audit record"],
    ["logs", "/operations/logs", "Logs"],
    ["catalog", "/catalog", "Catalog"],
    ["users", "/users", "Users"],
  ];
}

describe("on a phone (390×844)", () => {
  it("shows every page without serious accessibility problems", async () => {
    // In a zone other than the server's, to see the console name it.
    const phone = await (
      await browser.newContext({ viewport: { width: 390, height: 844 }, timezoneId: "America/New_York" })
    ).newPage();
    await signIn(phone, base, TEST_ADMIN.email, TEST_ADMIN.password);
    await phone.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
    const pages = await consolePages();
    const found: Record<string, string[]> = {};
    for (const [name, path, heading] of pages) {
      await phone.goto(`${base}${path}`);
      await phone.getByRole("heading", { level: 1, name: new RegExp(`^${heading}`) }).waitFor();
      await phone.waitForLoadState("networkidle").catch(() => undefined);
      found[name] = await seriousViolations(phone);
      await screenshot(phone, `phone-${name}`);
    }
    expect(found).toEqual(Object.fromEntries(pages.map(([name]) => [name, []])));

    // Times name their zone: the browser's, or UTC when chosen (kept across a reload).
    await phone.goto(`${base}/operations/audit`);
    const when = phone.getByRole("table", { name: "Audit records" }).getByRole("row").nth(1).getByRole("cell").nth(1);
    await when.getByText(/EST|EDT/).waitFor();
    await phone.getByRole("button", { name: "Times: local" }).click();
    await phone.getByRole("button", { name: "Times: UTC" }).waitFor();
    await phone.reload();
    await when.getByText(/UTC/).waitFor();
    await phone.getByRole("button", { name: "Times: UTC" }).click();
    await phone.context().close();
  });
});

describe("in dark mode (the system's choice)", () => {
  it("turns every page dark, without serious accessibility problems", async () => {
    const dark = await (
      await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "dark" })
    ).newPage();
    await signIn(dark, base, TEST_ADMIN.email, TEST_ADMIN.password);
    await dark.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
    // The page's background: near black here, near white in the light scheme the other tests use.
    const lightness = async (tab: Page) => {
      const color = await tab.evaluate<string>(
        "getComputedStyle(document.querySelector('main').parentElement).backgroundColor",
      );
      return Number(/oklch\(([\d.]+)/.exec(color)?.[1] ?? NaN);
    };
    expect(await lightness(dark)).toBeLessThan(0.3);
    expect(await lightness(page)).toBeGreaterThan(0.9);
    const pages = await consolePages();
    const found: Record<string, string[]> = {};
    for (const [name, path, heading] of pages) {
      await dark.goto(`${base}${path}`);
      await dark.getByRole("heading", { level: 1, name: new RegExp(`^${heading}`) }).waitFor();
      await dark.waitForLoadState("networkidle").catch(() => undefined);
      found[name] = await seriousViolations(dark);
      await screenshot(dark, `dark-${name}`);
    }
    expect(found).toEqual(Object.fromEntries(pages.map(([name]) => [name, []])));
    await dark.context().close();
  });
});

describe("the session", () => {
  it("says a wrong password is wrong, not that a session ended", async () => {
    const fresh = await newPage(browser, { width: 1280, height: 900 });
    await fresh.goto(`${base}/login`);
    await fresh.getByLabel("Email").fill(TEST_ADMIN.email);
    await fresh.getByLabel("Password").fill("not-the-admin-password");
    await fresh.getByRole("button", { name: "Sign in" }).click();
    await fresh.getByText("Wrong email or password.").waitFor();
    await fresh.context().close();
  });

  it("opens a deep link in a new tab signed in, and keeps the refresh token out of the page's reach", async () => {
    const first = await newPage(browser, { width: 1280, height: 900 });
    await signIn(first, base, TEST_ADMIN.email, TEST_ADMIN.password);
    await first.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
    const cookies = await first.context().cookies();
    expect(
      cookies.map(({ name, httpOnly, secure, sameSite, path }) => ({ name, httpOnly, secure, sameSite, path })),
    ).toEqual([{ name: "aicunet_refresh", httpOnly: true, secure: true, sameSite: "Strict", path: "/api/auth" }]);
    expect(await first.evaluate("document.cookie")).toBe("");
    expect(await first.evaluate<string>("JSON.stringify({ ...sessionStorage, ...localStorage })")).not.toMatch(
      /aicunet_refresh|refresh/i,
    );

    // A link pasted into a new tab of the same browser opens the page, not the sign-in form.
    const second = await first.context().newPage();
    await second.goto(`${base}/operations/logs`);
    await second.getByRole("heading", { level: 1, name: "Logs" }).waitFor();
    expect(await second.getByRole("heading", { name: "Sign in to AiCUnet" }).count()).toBe(0);
    // Both tabs keep working through their refreshes (10 s tokens, refreshed one tab at a time).
    await first.waitForTimeout(12_000);
    await second.reload();
    await second.getByRole("heading", { level: 1, name: "Logs" }).waitFor();
    await first.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Orders" }).click();
    await first.getByRole("heading", { level: 1, name: "Orders" }).waitFor();
    expect(await first.getByRole("heading", { name: "Sign in to AiCUnet" }).count()).toBe(0);
    await first.context().close();
  });

  it("keeps the session when a refresh is rate-limited: it waits and tries again", async () => {
    const tab = await newPage(browser, { width: 1280, height: 900 });
    await signIn(tab, base, TEST_ADMIN.email, TEST_ADMIN.password);
    await tab.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
    // The reload's refresh meets one 429 (as from a gateway's limiter); the next goes through.
    let limited = 0;
    await tab.route("**/api/auth/refresh", async (route) => {
      if (limited++ === 0) {
        await route.fulfill({
          status: 429,
          headers: { "retry-after": "1", "content-type": "application/json" },
          body: JSON.stringify({ name: "RateLimitedError", code: 429, type: "RATE_LIMITED", message: "Slow down" }),
        });
      } else {
        await route.continue();
      }
    });
    await tab.reload();
    await tab.getByRole("heading", { level: 1, name: "Dashboard" }).waitFor();
    expect(limited).toBe(2);
    expect(await tab.getByRole("heading", { name: "Sign in to AiCUnet" }).count()).toBe(0);
    await tab.context().close();
  });
});

describe("as a customer", () => {
  const customer = { email: "ui-customer@example.com", password: "a-long-enough-password" };
  let customerPage: Page;

  beforeAll(async () => {
    const res = await fetch(`${base}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...customer, displayName: "UI Customer" }),
    });
    expect(res.status).toBe(201);
    customerPage = await newPage(browser, { width: 800, height: 900 });
  });

  it("sees only their orders; the admin pages are not offered, and the API refuses them", async () => {
    await signIn(customerPage, base, customer.email, customer.password);
    const nav = customerPage.getByRole("navigation", { name: "Main" });
    expect(await nav.getByRole("link").allTextContents()).toEqual(["Orders"]);
    // Typed in directly (a reload keeps the session), a page the customer may not open says so.
    await customerPage.goto(`${base}/operations/audit`);
    await customerPage.getByText("You do not have access to this page.").waitFor();
    await customerPage.goto(`${base}/users`);
    await customerPage.getByText("You do not have access to this page.").waitFor();
    const token = await login(base, customer);
    for (const path of ["/api/audit", "/api/auth/users", "/api/dlq", "/api/dashboard"]) {
      expect((await send("GET", path, undefined, token)).status).toBe(403);
    }
    expect(await seriousViolations(customerPage)).toEqual([]);
  });

  it("chooses a new password when the account's must be changed, and is then signed in", async () => {
    const changer = { email: "ui-changer@example.com", password: "a-long-enough-password" };
    const registered = await fetch(`${base}/api/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...changer, displayName: "UI Changer" }),
    });
    expect(registered.status).toBe(201);
    // As a generated first-admin password is marked.
    const authDb = new Client({ connectionString: scopedDatabaseUrl(scope.prefix, "auth") });
    await authDb.connect();
    await authDb.query("UPDATE users SET must_change_password = true WHERE email = $1", [changer.email]);
    await authDb.end();

    const changerPage = await newPage(browser, { width: 800, height: 900 });
    await changerPage.goto(`${base}/login`);
    await changerPage.getByLabel("Email").fill(changer.email);
    await changerPage.getByLabel("Password").fill(changer.password);
    await changerPage.getByRole("button", { name: "Sign in" }).click();
    await changerPage.getByRole("heading", { name: "Choose a new password" }).waitFor();
    expect(await seriousViolations(changerPage)).toEqual([]);
    await screenshot(changerPage, "password-change");
    await changerPage.getByLabel("New password", { exact: true }).fill("a-chosen-new-password");
    await changerPage.getByLabel("Confirm new password").fill("a-chosen-new-password");
    await changerPage.getByRole("button", { name: "Change password and sign in" }).click();
    await changerPage.getByRole("button", { name: "Sign out" }).waitFor();
    await login(base, { email: changer.email, password: "a-chosen-new-password" });
    await changerPage.close();
  });

  it("is sent back to sign-in with a notice when the session ends", async () => {
    await signIn(customerPage, base, customer.email, customer.password);
    await customerPage.getByRole("heading", { level: 1, name: "Orders" }).waitFor();
    const me = await json<{ id: string }>(await send("GET", "/api/auth/me", undefined, await login(base, customer)));
    expect((await send("PATCH", `/api/auth/users/${me.id}`, { status: "disabled" })).status).toBe(200);
    // The next silent refresh (at 80% of the 10 s token life) is refused: back to sign-in, saying why.
    await customerPage.getByText("Your session has ended. Please sign in again.").waitFor({ timeout: 20_000 });
    await customerPage.getByRole("heading", { name: "Sign in to AiCUnet" }).waitFor();
  });
});
