// Browser scenarios of the console (SPEC section 9), in Debian's Chromium driven by
// playwright-core (no browser download: `executablePath` of the system one).
//
//   node run.mjs BINARY DATABASE_URL BACKEND_NAME
//
// Starts the built server on the given (empty) database, seeds it through the API, and
// runs each scenario in a fresh browser context. Every scenario asserts that no request
// left 127.0.0.1, that the browser console logged no error, and that axe-core finds no
// serious or critical violation on each page it visits; a full-page screenshot of each
// page goes to target/console-screenshots/<backend>-<scenario>-<page>.png. Exits non-zero
// on the first failed scenario, after printing one line per scenario.

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import http from "node:http";

const require = createRequire(import.meta.url);
const [binary, databaseUrl, backend] = process.argv.slice(2);
if (!binary || !databaseUrl || !backend) {
  console.error("usage: node run.mjs BINARY DATABASE_URL BACKEND_NAME");
  process.exit(2);
}
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const shots = path.join(root, "target", "console-screenshots");
fs.mkdirSync(shots, { recursive: true });
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

// --- the server -------------------------------------------------------------------
const adminKey = `console-admin-${randomBytes(16).toString("hex")}`;
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CUSTOMER_LIST_")));
Object.assign(env, {
  CUSTOMER_LIST_DATABASE_URL: databaseUrl,
  CUSTOMER_LIST_ADMIN_KEY: adminKey,
  CUSTOMER_LIST_LISTEN: "127.0.0.1:0",
  CUSTOMER_LIST_RATE_LIMIT: "100000",
  CUSTOMER_LIST_WEBHOOK_ALLOWED_CIDRS: "127.0.0.1/32",
  RUST_LOG: "warn",
});
const server = spawn(binary, ["serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
const base = await new Promise((resolve, reject) => {
  let seen = "";
  const timer = setTimeout(() => reject(new Error(`server did not start: ${seen}`)), 30000);
  server.stderr.on("data", (chunk) => {
    seen += chunk;
    const match = seen.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (match) {
      clearTimeout(timer);
      resolve(match[1]);
    }
  });
  server.on("exit", (code) => reject(new Error(`server exited (${code}): ${seen}`)));
});

async function api(method, route, key, body) {
  const response = await fetch(base + route, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// A product's webhook receiver that is down: every delivery fails with 503.
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(503, { "content-type": "text/plain" });
    res.end("down for maintenance");
  });
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks`;

// --- the data: two accounts of one partner, 250 customers in the first -------------
const partner = (await api("POST", "/v1/partners", adminKey, { name: "Prairie Resellers" })).partner_id;
const salon = (await api("POST", "/v1/accounts", adminKey, { partner_id: partner, name: "Saskatoon Salon", default_region: "CA" })).account_id;
const bakery = (await api("POST", "/v1/accounts", adminKey, { partner_id: partner, name: "Regina Bakery", default_region: "CA" })).account_id;
const salonKey = (await api("POST", `/v1/accounts/${salon}/keys`, adminKey, {})).api_key;
const booking = await api("POST", "/v1/products", adminKey, { name: "Booking app", partner_id: partner, webhook_url: hookUrl });
const firsts = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus"];
const lasts = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Wirth"];
const people = Array.from({ length: 250 }, (_, i) => ({
  first_name: firsts[i % 10],
  last_name: `${lasts[Math.floor(i / 10) % 10]}${i >= 100 ? ` ${Math.floor(i / 100)}` : ""}`,
  email: `person${i}@example.com`,
  phone: `+1306555${String(1000 + i).slice(-4)}`,
  tags: i % 7 === 0 ? ["vip"] : [],
}));
for (let i = 0; i < people.length; i += 125) {
  const batch = await api("POST", "/v1/customers/batch", salonKey, { customers: people.slice(i, i + 125) });
  const refused = batch.results.filter((r) => r.status !== 201);
  if (refused.length) throw new Error(`seeding refused: ${JSON.stringify(refused[0])}`);
}
await api("POST", "/v1/customers", adminKey, { account_id: bakery, first_name: "Bread", last_name: "Baker", email: "baker@example.com" });
// Three duplicates for the queue: new records sharing an email with a customer.
for (const [i, first] of [[10, "Adah"], [11, "Gracie"], [12, "Al"]]) {
  const response = await fetch(`${base}/v1/customers`, {
    method: "POST",
    headers: { authorization: `Bearer ${salonKey}`, "content-type": "application/json" },
    body: JSON.stringify({ first_name: first, last_name: "Dup", email: `person${i}@example.com` }),
  });
  if (response.status !== 409) throw new Error(`a duplicate create answered ${response.status}`);
}

// --- the harness ---------------------------------------------------------------------
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
const results = [];

async function scenario(name, body) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname !== "127.0.0.1") {
      problems.push(`request left 127.0.0.1: ${url.href}`);
      return route.abort();
    }
    return route.continue();
  });
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    // Chromium logs every 4xx answer as "Failed to load resource". A console page that
    // refuses (401 sign-in, 403 form, 404 another tenant's) answers so on purpose, in
    // words; an asset never may.
    const where = new URL(message.location().url || base);
    const refusedPage =
      message.text().startsWith("Failed to load resource: the server responded with a status of 4") &&
      where.pathname.startsWith("/console/") &&
      !where.pathname.startsWith("/console/assets/");
    if (!refusedPage) problems.push(`console error: ${message.text()} (${where.href})`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  let shot = 0;
  const check = async (label, { phone = false } = {}) => {
    // axe-core through the DevTools protocol, which the page's CSP does not govern.
    await page.evaluate(axeSource);
    const found = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ["violations"] });
      return result.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    });
    for (const violation of found) problems.push(`axe on ${label}: ${violation}`);
    shot += 1;
    const file = path.join(shots, `${backend}-${name}-${String(shot).padStart(2, "0")}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    if (phone) {
      await page.setViewportSize({ width: 375, height: 740 });
      await page.screenshot({ path: file.replace(/\.png$/, "-phone.png"), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  };
  const started = Date.now();
  let failure = null;
  try {
    await body({ page, check, expect });
  } catch (error) {
    failure = error;
  }
  await context.close();
  if (!failure && problems.length) failure = new Error(problems.join("\n"));
  results.push({ name, ok: !failure, ms: Date.now() - started, failure });
  console.log(`console ${backend} ${failure ? "FAIL" : "ok  "} ${name} (${Date.now() - started} ms)${failure ? `\n  ${failure.message}` : ""}`);
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function signIn(page, key) {
  await page.goto(`${base}/console/sign-in`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/console/customers`);
}

const totalText = (page) => page.locator(".total").innerText();

// --- the scenarios -------------------------------------------------------------------
await scenario("sign-in", async ({ page, check }) => {
  await page.goto(`${base}/console`);
  expect(page.url() === `${base}/console/sign-in`, `without a session /console goes to sign-in, not ${page.url()}`);
  await check("sign-in", { phone: true });
  await page.getByLabel("API key").fill("cl_not-a-key-of-this-hub");
  await page.getByRole("button", { name: "Sign in" }).click();
  const alert = await page.getByRole("alert").innerText();
  expect(alert.includes("That key was not accepted"), `a wrong key says so: ${alert}`);
  await check("wrong-key");
  await signIn(page, salonKey);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "cl_session");
  expect(session && session.httpOnly && session.sameSite === "Strict", `the session cookie: ${JSON.stringify(session)}`);
  expect(!cookies.some((c) => c.value.includes(salonKey)), "the key is not kept in the browser");
  expect((await page.content()).indexOf(salonKey) === -1, "no page shows the key");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/console/sign-in`);
  await page.goto(`${base}/console/customers`);
  expect(page.url() === `${base}/console/sign-in`, "after sign-out the list needs a new sign-in");
});

await scenario("customers", async ({ page, check }) => {
  await signIn(page, salonKey);
  expect((await totalText(page)).startsWith("250 customers"), `the total: ${await totalText(page)}`);
  expect((await page.locator(".who").innerText()).includes("Saskatoon Salon (account)"), "the header names the account");
  expect((await page.locator("tbody tr").count()) === 25, "a page of 25");
  await check("list", { phone: true });
  // Search (q), through htmx: the table alone is swapped.
  await page.getByLabel("Search").fill("person7@example.com");
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForFunction(() => document.querySelector(".total")?.textContent.startsWith("1 customer"));
  const match = await page.locator("tbody tr").innerText();
  expect(match.includes("Ken Lovelace") && match.includes("person7@example.com"), `the match is shown: ${match}`);
  await check("search");
  // Sort and page through all 250: no repeats, none skipped.
  await page.goto(`${base}/console/customers?sort=-last_name`);
  const seen = new Set();
  for (let pageNumber = 0; pageNumber < 12; pageNumber += 1) {
    for (const email of await page.locator('td[data-label="Email"]').allInnerTexts()) seen.add(email);
    const next = page.getByRole("link", { name: "Next page" });
    if ((await next.count()) === 0) break;
    const first = await page.locator('td[data-label="Email"]').first().innerText();
    await next.click();
    // htmx swaps the table in place: wait for the next page's rows.
    await page.waitForFunction(
      (before) => document.querySelector('td[data-label="Email"]')?.textContent !== before,
      first,
    );
  }
  expect(seen.size === 250, `paging showed ${seen.size} distinct customers of 250`);
  const names = await page.locator('td[data-label="Name"]').allInnerTexts();
  expect(names.length > 0, "the last page has rows");
  await check("last-page");
});

await scenario("tenancy", async ({ page, check }) => {
  await signIn(page, salonKey);
  const response = await page.goto(`${base}/console/customers?account_id=${bakery}`);
  expect(response.status() === 404, `another account's list is the API's 404, not ${response.status()}`);
  expect((await page.getByRole("alert").innerText()).includes("account not found"), "said in words");
  expect(!(await page.content()).includes("Bread Baker"), "nothing of the other account");
  await check("other-account");
});

await scenario("admin-picks-the-account", async ({ page, check }) => {
  await signIn(page, adminKey);
  await page.getByLabel("Account").selectOption({ label: "Regina Bakery" });
  await page.waitForFunction(() => document.querySelector(".total")?.textContent.startsWith("1 customer"));
  expect((await page.locator("tbody").innerText()).includes("Bread Baker"), "the picked account's customers");
  await check("picker", { phone: true });
});

await scenario("csrf", async ({ page }) => {
  await signIn(page, salonKey);
  // A form posted without its token is refused, and the session stays.
  await page.evaluate(() => document.querySelector('input[name="csrf"]').remove());
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForLoadState();
  expect((await page.content()).includes("This form has expired"), "the refusal says why");
  await page.goto(`${base}/console/customers`);
  expect(page.url().startsWith(`${base}/console/customers`), "still signed in");
});

await scenario("edit-while-another-edit-lands", async ({ page, check }) => {
  await signIn(page, salonKey);
  await page.getByRole("link", { name: "Ada Lovelace" }).first().click();
  await page.waitForURL(/\/console\/customers\/CUSTOMER-/);
  const id = page.url().split("/").pop();
  await check("customer", { phone: true });
  await page.getByLabel("Last name").fill("King");
  // Meanwhile a product changes the city through the API.
  await api("PATCH", `/v1/customers/${id}`, salonKey, { city: "Regina" });
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForLoadState();
  const alert = await page.getByRole("alert").innerText();
  expect(alert.includes("Someone else changed this customer") && alert.includes("Regina"), `the change is shown: ${alert}`);
  expect((await page.getByLabel("Last name").inputValue()) === "King", "the user's edit is kept in the form");
  let stored = await api("GET", `/v1/customers/${id}`, salonKey);
  expect(stored.last_name === "Lovelace" && stored.city === "Regina", "nothing was overwritten");
  await check("concurrent-change");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForURL(/saved=1/);
  expect((await page.getByRole("status").innerText()).includes("Saved"), "saved");
  stored = await api("GET", `/v1/customers/${id}`, salonKey);
  expect(stored.last_name === "King" && stored.city === "Regina", `both changes stand: ${JSON.stringify(stored)}`);
  // The history shows each version, who made it and what it changed.
  const history = await page.locator("table.history").innerText();
  expect(history.includes("Lovelace") && history.includes("King") && history.includes("Regina"), `the history: ${history}`);
  // A bad value is refused next to its field, and nothing is stored.
  await page.getByLabel("Email").fill("not an email");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.waitForLoadState();
  const error = await page.locator("#email-error").innerText();
  expect(error.length > 0, "the error is next to the field");
  await check("field-error");
});

await scenario("merge-two-customers", async ({ page, check }) => {
  await signIn(page, salonKey);
  await page.getByRole("link", { name: "Alan Lovelace" }).first().click();
  await page.waitForURL(/\/console\/customers\/CUSTOMER-/);
  const survivor = page.url().split("/").pop();
  await page.getByRole("link", { name: "Merge another customer into this one" }).click();
  await page.getByLabel("Find the other customer").fill("person3@example.com");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: "Preview merging Edsger Lovelace" }).click();
  await page.waitForURL(/from=CUSTOMER-/);
  const absorbed = new URL(page.url()).searchParams.get("from");
  const preview = await page.locator("table.compare").innerText();
  expect(preview.includes("person2@example.com, person3@example.com"), `the emails are united in the preview: ${preview}`);
  let stored = await api("GET", `/v1/customers/${absorbed}`, salonKey);
  expect(stored.customer_id === absorbed, "a preview changes nothing");
  await check("preview", { phone: true });
  await page.getByRole("button", { name: "Merge" }).click();
  await page.waitForURL(/merged=1/);
  expect((await page.getByRole("status").innerText()).includes("Merged"), "merged");
  const gone = await fetch(`${base}/v1/customers/${absorbed}`, { headers: { authorization: `Bearer ${salonKey}` } });
  const problem = await gone.json();
  expect(gone.status === 404 && problem.merged_into === survivor, `the absorbed id answers merged_into: ${JSON.stringify(problem)}`);
  stored = await api("GET", `/v1/customers/${survivor}`, salonKey);
  expect(stored.email.includes("person3@example.com"), "the survivor holds both emails");
});

await scenario("delete", async ({ page }) => {
  await signIn(page, salonKey);
  await page.getByRole("link", { name: "Grace Lovelace" }).first().click();
  await page.waitForURL(/\/console\/customers\/CUSTOMER-/);
  const id = page.url().split("/").pop();
  await page.getByRole("button", { name: "Delete this customer" }).click();
  await page.waitForURL(`${base}/console/customers`);
  expect((await totalText(page)).startsWith("248 customers"), `one fewer (after one merge): ${await totalText(page)}`);
  const gone = await fetch(`${base}/v1/customers/${id}`, { headers: { authorization: `Bearer ${salonKey}` } });
  expect(gone.status === 404, "deleted for the API too");
});

await scenario("duplicates", async ({ page, check }) => {
  await signIn(page, salonKey);
  await page.getByRole("link", { name: "Duplicates" }).click();
  await page.waitForURL(`${base}/console/duplicates`);
  expect((await totalText(page)).startsWith("3 to review"), `the queue: ${await totalText(page)}`);
  expect((await page.locator("tr.differs").count()) > 0, "the fields that differ are marked");
  await check("queue", { phone: true });
  // Merge, taking the new values: previewed (a dry run) before it is applied.
  await page.getByRole("button", { name: "Preview merge, taking the new values" }).click();
  await page.waitForLoadState();
  expect((await page.locator("thead").innerText()).includes("After the merge"), "the preview");
  let stored = await api("GET", "/v1/customers?q=person10%40example.com", salonKey);
  expect(stored.customers[0].first_name === "Ada", "a preview changes nothing");
  await check("preview");
  await page.getByRole("button", { name: "Merge as previewed" }).click();
  await page.waitForURL(/done=merged/);
  expect((await page.getByRole("status").innerText()).includes("Merged"), "merged");
  expect((await totalText(page)).startsWith("2 to review"), "on to the next one");
  stored = await api("GET", "/v1/customers?q=person10%40example.com", salonKey);
  expect(stored.customers[0].first_name === "Adah" && stored.customers[0].last_name === "Dup", `merged preferring the new values: ${JSON.stringify(stored.customers[0])}`);
  // Keep, then discard.
  await page.getByRole("button", { name: "Keep as a separate customer" }).click();
  await page.waitForURL(/done=kept/);
  expect((await totalText(page)).startsWith("1 to review"), "kept");
  await page.getByRole("button", { name: "Discard the new record" }).click();
  await page.waitForURL(/done=discarded/);
  expect((await totalText(page)).startsWith("0 to review"), "discarded");
  expect((await page.content()).includes("Nothing to review"), "the queue is empty");
  await check("empty");
});

await scenario("tenants-and-keys", async ({ page, check }) => {
  await signIn(page, adminKey);
  await page.getByRole("link", { name: "Tenants" }).click();
  await page.waitForURL(`${base}/console/tenants`);
  await check("tenants", { phone: true });
  await page.getByLabel("New partner's name").fill("Lakeside Partners");
  await page.getByRole("button", { name: "Create partner" }).click();
  await page.waitForURL(/done=partner/);
  await page.getByLabel("Partner", { exact: true }).selectOption({ label: "Lakeside Partners" });
  await page.getByLabel("New account's name").fill("Lakeside Spa");
  await page.getByLabel("Region (two letters)").fill("CA");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(/done=account/);
  // A bad value is refused in words, and nothing is stored.
  await page.getByLabel("New account's name").fill("Broken");
  await page.getByLabel("Region (two letters)").fill("ZZ");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForLoadState();
  expect((await page.getByRole("alert").innerText()).includes("default_region"), "the refused field is named");
  await page.goto(`${base}/console/tenants`);
  expect(!(await page.content()).includes("Broken"), "nothing was stored");
  await page.getByRole("link", { name: "Keys of Lakeside Spa" }).click();
  await page.getByRole("button", { name: "Issue a key for Lakeside Spa" }).click();
  await page.waitForLoadState();
  const issued = await page.getByLabel("API key").inputValue();
  expect(issued.startsWith("cl_"), "the new key is shown once");
  await check("issued");
  await page.getByRole("link", { name: "Keys of Lakeside Spa" }).click();
  await page.waitForLoadState();
  expect(!(await page.content()).includes(issued), "and only once");
  // The new key signs in elsewhere; revoking it ends that session on its next request.
  const other = await browser.newContext();
  const spa = await other.newPage();
  await signIn(spa, issued);
  expect((await totalText(spa)).startsWith("0 customers"), "the new account is empty");
  await page.getByRole("button", { name: /^Revoke KEY-/ }).click();
  await page.waitForURL(/done=revoked/);
  expect((await page.locator("tbody").last().innerText()).includes("Revoked"), "shown as revoked");
  await spa.goto(`${base}/console/customers`);
  expect(spa.url() === `${base}/console/sign-in`, `the revoked key's session ended: ${spa.url()}`);
  await other.close();
});

await scenario("products-and-deliveries", async ({ page, check }) => {
  await signIn(page, adminKey);
  await page.getByRole("link", { name: "Products" }).click();
  await page.waitForURL(/\/console\/products/);
  expect((await page.content()).includes("No product is activated"), "none yet");
  await page.getByLabel("Product", { exact: true }).selectOption({ label: "Booking app" });
  await page.getByLabel("Sync").selectOption("two_way");
  await page.getByRole("button", { name: "Activate" }).click();
  await page.waitForURL(/done=activated/);
  expect((await page.locator("tbody").innerText()).includes("two_way"), "activated two-way");
  // The account's existing customers are being sent (the receiver is down: it stays so).
  const progress = await page.locator("tbody").innerText();
  expect(progress.includes("Sending existing customers"), `the backfill's progress: ${progress}`);
  expect((await page.locator("tbody progress").count()) === 1, "a progress bar");
  await check("products", { phone: true });
  await page.getByRole("button", { name: "Send all again to Booking app" }).click();
  await page.waitForURL(/done=resync/);
  expect((await page.content()).includes("Sending every customer again."), "the resync is acknowledged");
  // A change now goes to the product, whose receiver answers 503.
  const hedy = await api("POST", "/v1/customers", salonKey, { first_name: "Hedy", last_name: "Lamarr", email: "hedy@example.com" });
  await page.getByRole("link", { name: "Booking app" }).click();
  await page.waitForURL(/\/console\/products\/MP-/);
  for (let i = 0; i < 50 && !(await page.content()).includes("HTTP 503"); i += 1) {
    await page.waitForTimeout(100);
    await page.reload();
  }
  expect((await page.content()).includes("HTTP 503"), "the failed attempt and its answer are shown");
  await page.locator("details summary").first().click();
  expect((await page.locator("details").first().innerText()).includes("down for maintenance"), "the receiver's answer");
  await page.reload();
  expect((await page.locator("figure.chart svg rect.failed").count()) === 24, "the chart has an hour a column");
  const failedNow = await page.locator("figure.chart svg rect.failed").last().getAttribute("height");
  expect(Number(failedNow) > 0, `the failed attempt is in the last hour's column (${failedNow})`);
  await check("deliveries", { phone: true });
  // The log filtered to one customer; a malformed id is refused next to its field.
  await page.getByLabel("Customer id").fill("not-an-id");
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForLoadState();
  expect((await page.locator("#customer_id-error").innerText()).includes("CUSTOMER-"), "the bad id is named next to the field");
  await page.getByLabel("Customer id").fill(hedy.customer_id);
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/customer_id=CUSTOMER-/);
  const filtered = await page.locator("tbody").last().innerText();
  expect(filtered.includes(hedy.customer_id) && filtered.includes("customer.created"), `filtered to Hedy: ${filtered}`);
  // Hedy's page says what the product was sent and that it has not arrived yet.
  const productUrl = page.url();
  await page.goto(`${base}/console/customers/${hedy.customer_id}`);
  const sent = await page.locator("table.sent").innerText();
  expect(sent.includes("Booking app") && sent.includes("HTTP 503"), `sent to the product, not arrived: ${sent}`);
  await check("customer-sent", { phone: true });
  await page.goto(productUrl);
  await page.getByRole("button", { name: /^Retry customer\.created/ }).first().click();
  await page.waitForLoadState();
  const said = await page.locator(".notice, .error").first().innerText();
  expect(said.includes("due now") || said.includes("in flight") || said.includes("newer"), `retry answered: ${said}`);
  await page.getByRole("button", { name: "Rotate the signing secret" }).click();
  await page.waitForLoadState();
  const secret = await page.getByLabel("Signing secret", { exact: true }).inputValue();
  expect(secret.startsWith("whsec_"), "the new secret is shown once");
  await check("rotated");
  await page.getByRole("link", { name: "← Products" }).click();
  await page.getByRole("button", { name: "Deactivate Booking app" }).click();
  await page.waitForURL(/done=deactivated/);
  expect((await page.content()).includes("No product is activated"), "deactivated");
});

await scenario("consent-export-erase", async ({ page, check }) => {
  // A customer who gave consent in the shop, then is forgotten at their request.
  const ada = await api("POST", "/v1/customers", salonKey, {
    first_name: "Ada", last_name: "Forgotten", email: "ada.forgotten@example.com",
    permission_to_contact: true, consent: { method: "in-store sign-up", text: "Yes, email me." },
  });
  await signIn(page, salonKey);
  await page.goto(`${base}/console/customers/${ada.customer_id}`);
  const consent = await page.locator("table.consent").innerText();
  expect(consent.includes("Granted") && consent.includes("in-store sign-up"), `the consent history: ${consent}`);
  const exported = await page.request.get(`${base}/console/customers/${ada.customer_id}/export`);
  expect(exported.status() === 200, `export answered ${exported.status()}`);
  expect((exported.headers()["content-disposition"] || "").includes(`${ada.customer_id}.json`), "a download named after the customer");
  const doc = await exported.json();
  expect(doc.customer.email[0] === "ada.forgotten@example.com" && doc.consent_history.length === 1, "the export holds the person");
  await check("customer-with-consent", { phone: true });
  await page.getByLabel("Reason (optional, no personal details)").fill("asked at the front desk");
  await page.getByLabel("Refuse this person if they are added again").check();
  await page.getByRole("button", { name: "Erase this customer" }).click();
  await page.waitForURL(/\/console\/erasures\/ERASURE-/);
  const receipt = await page.locator("main").innerText();
  expect(receipt.includes("Nothing of this person is left") && receipt.includes("asked at the front desk"), `the receipt: ${receipt}`);
  await check("receipt", { phone: true });
  const gone = await fetch(`${base}/v1/customers/${ada.customer_id}`, { headers: { authorization: `Bearer ${salonKey}` } });
  const problem = await gone.json();
  expect(gone.status === 404 && problem.erasure_id, "erased for the API too, with its erasure id");
  const again = await fetch(`${base}/v1/customers`, {
    method: "POST",
    headers: { authorization: `Bearer ${salonKey}`, "content-type": "application/json" },
    body: JSON.stringify({ first_name: "Ada", email: "ada.forgotten@example.com" }),
  });
  expect(again.status === 409 && (await again.json()).code === "suppressed", "the email cannot come back");
  // The account's erasures and suppressions; lifting the suppression lets Ada come back.
  await page.getByRole("link", { name: "← All erasures" }).click();
  await page.waitForURL(/\/console\/privacy/);
  const erasures = await page.locator("section", { has: page.getByRole("heading", { name: "Erasures" }) }).innerText();
  expect(erasures.includes("Completed") || erasures.includes("In progress"), `the account's erasures: ${erasures}`);
  const kept = await page.locator("p.total").innerText();
  expect(kept.startsWith("1 kept from coming back"), `one email kept out: ${kept}`);
  await check("privacy", { phone: true });
  await page.getByLabel("Email or phone to allow again").fill("not a phone");
  await page.getByRole("button", { name: "Lift" }).click();
  const said = await page.locator("#value-error").innerText();
  expect(said.includes("not a phone number"), `words next to the field: ${said}`);
  expect((await page.getByLabel("Email or phone to allow again").getAttribute("aria-invalid")) === "true", "the field is marked invalid");
  await check("privacy-lift-refused");
  await page.getByLabel("Email or phone to allow again").fill("Ada.Forgotten@example.com");
  await page.getByRole("button", { name: "Lift" }).click();
  await page.getByText("Lifted: it may be added to this account again.").waitFor();
  const none = await page.locator("p.total").innerText();
  expect(none.startsWith("0 kept from coming back"), `none kept out after the lift: ${none}`);
  const back = await api("POST", "/v1/customers", salonKey, { first_name: "Ada", email: "ada.forgotten@example.com" });
  expect(back.customer_id && back.customer_id !== ada.customer_id, "Ada may be added again, as a new customer");
});

await scenario("import-and-export", async ({ page, check }) => {
  await signIn(page, salonKey);
  await page.getByRole("link", { name: "Imports" }).click();
  await page.waitForURL(`${base}/console/imports`);
  await check("imports", { phone: true });
  // A file whose headers are not field names: the picker maps them.
  const csv = "Given;E-mail;Notes\nImogen;imogen@example.com;met at the fair\nBroken;not-an-email;typo\nIvo;ivo@example.com;\n";
  await page.setInputFiles("#file", { name: "fair.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.locator("table.preview").waitFor();
  const preview = await page.locator("#preview").innerText();
  expect(preview.includes("3 rows to import") && preview.includes("met at the fair"), `the preview: ${preview}`);
  await page.getByLabel("Field for the column Given").selectOption("first_name");
  await page.getByLabel("Field for the column E-mail").selectOption("email");
  await check("import-preview", { phone: true });
  await page.getByRole("button", { name: "Start the import" }).click();
  await page.waitForURL(/\/console\/imports\/IMPORT-/);
  await page.locator("#progress .total", { hasText: "Done:" }).waitFor({ timeout: 20000 });
  const counts = await page.locator("dl.counts").innerText();
  expect(/Added\s+2/.test(counts) && /Could not be added\s+1/.test(counts), `the counts: ${counts}`);
  await check("import-done", { phone: true });
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: /Download the 1 row that/ }).click(),
  ]);
  const errors = fs.readFileSync(await download.path(), "utf8");
  expect(errors.includes("line,problem,Given,E-mail,Notes") && errors.includes("not-an-email"), `the error file: ${errors}`);
  // A file that cannot be read says so next to the file field.
  await page.goto(`${base}/console/imports`);
  await page.setInputFiles("#file", { name: "empty.csv", mimeType: "text/csv", buffer: Buffer.from("") });
  const refusal = await page.getByRole("alert").innerText();
  expect(refusal.includes("has no header row"), `an empty file: ${refusal}`);
  // The export honours the list's search.
  await page.goto(`${base}/console/customers?q=imogen`);
  const [exported] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Export these to CSV" }).click(),
  ]);
  const lines = fs.readFileSync(await exported.path(), "utf8").trim().split("\n");
  expect(lines.length === 2 && lines[1].includes("imogen@example.com"), `the export: ${lines.join(" | ")}`);
  await check("customers-with-export");
});

await browser.close();
receiver.close();
server.kill("SIGTERM");
const failed = results.filter((r) => !r.ok);
console.log(`console ${backend}: ${results.length - failed.length}/${results.length} scenarios passed; screenshots in ${path.relative(root, shots)}/`);
process.exit(failed.length ? 1 : 0);
