// End-to-end tests of the web client in Debian's headless Chromium (playwright-core, no browser
// download) against a running gateway. Usage:
//   STAGE1_GATEWAY_URL=http://127.0.0.1:3116 STAGE1_E2E_TOKEN=<read+write token> node e2e/run.mjs [--shots DIR]
// Prints one line per check and a summary line `e2e: N passed, M failed` (exit 1 on any failure).
import { mkdtempSync, rmSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = (process.env.STAGE1_GATEWAY_URL ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const TOKEN = process.env.STAGE1_E2E_TOKEN ?? "";
const CHROMIUM = process.env.STAGE1_CHROMIUM ?? "/usr/bin/chromium";
const shotsAt = process.argv.indexOf("--shots");
const SHOTS = shotsAt > 0 ? process.argv[shotsAt + 1] : null;
if (!TOKEN) { console.error("STAGE1_E2E_TOKEN is required"); process.exit(2); }
if (!existsSync(CHROMIUM)) { console.error(`no browser at ${CHROMIUM} (apt-get install chromium)`); process.exit(2); }
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const uid = Math.random().toString(36).slice(2, 10);
const H = { "X-Stage1-Token": TOKEN, "Content-Type": "application/json" };
async function call(method, path, body) {
  const r = await fetch(BASE + path, { method, headers: H, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

const START = 1704067200, HOUR = 3600, N = 600;
function ohlcvCsv() {
  let price = 100, out = "timestamp,open,high,low,close,volume\n";
  for (let i = 0; i < N; i++) {
    const o = price, c = o * (1 + Math.sin(i / 7) * 0.01 + (i % 5 - 2) / 1000);
    out += `${new Date((START + i * HOUR) * 1000).toISOString()},${o},${Math.max(o, c) * 1.003},${Math.min(o, c) * 0.997},${c},${100 + (i % 17) * 3}\n`;
    price = c;
  }
  return out;
}
function runBody(datasetId, depth) {
  const folds = [0, 1, 2].map((k) => ({
    fold_number: k, train_start: START, train_end: START + (200 + k * 100) * HOUR,
    test_start: START + (200 + k * 100) * HOUR, test_end: START + (299 + k * 100) * HOUR, samples_train: 200 + k * 100, samples_test: 100,
    thresholds: { long: 0.6, short: 0.4 }, metrics: { auc: 0.5 + k / 50 + depth / 100, hit_rate: 0.5 + k / 100 },
  }));
  const predictions = [];
  for (let i = 200; i < 500; i++) predictions.push({ timestamp: START + i * HOUR, bar_index: i, fold_number: Math.floor((i - 200) / 100), prediction: 0.5 + Math.sin(i / 9) / 3, target: i % 3 ? 1 : 0 });
  return { dataset_id: datasetId, target_column: "up_next", hyperparameters: { max_depth: depth, eta: 0.05 }, walk_config: { folds: 3 },
    summary_metrics: { auc: 0.5 + depth / 100 }, folds, predictions };
}

const results = [];
const consoleErrors = [];
let expectDenied = false;
let expectBadSql = false; // the SQL step sends bad SQL on purpose: its 400 is logged by the browser
async function check(name, fn) {
  const t0 = Date.now();
  try { await fn(); results.push([name, true]); console.log(`ok   ${name} (${Date.now() - t0} ms)`); }
  catch (e) { results.push([name, false]); console.log(`FAIL ${name}: ${e.message.split("\n")[0]}`); }
}

const profile = mkdtempSync(join(tmpdir(), "stage1-e2e-"));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  // The fresh profile dir is passed as userDataDir (playwright sets --user-data-dir from it).
});
const page = ctx.pages()[0] ?? (await ctx.newPage());
page.setDefaultTimeout(15000);
page.on("console", (m) => { if (m.type() === "error" && !(expectDenied && /401|403/.test(m.text())) && !(expectBadSql && /400/.test(m.text()))) consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));
// Every API call the page makes with a token carries it as Authorization: Bearer, never X-Stage1-Token.
const apiCalls = [];
page.on("request", (r) => {
  if (!r.url().startsWith(BASE + "/api/")) return;
  const h = r.headers();
  apiCalls.push({ url: r.url(), bearer: (h.authorization ?? "").startsWith("Bearer "), xToken: "x-stage1-token" in h });
});
const shot = async (name) => { if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`) }); };
async function signIn(token) {
  await page.goto(BASE + "/");
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(BASE + "/");
  await page.fill("#token", token);
  await page.click("button[type=submit]");
}

let ds, runs = [], sim;
try {
  await check("the page is served with its CSP", async () => {
    const r = await fetch(BASE + "/datasets/anything");
    const csp = r.headers.get("content-security-policy") ?? "";
    if (r.status !== 200 || !csp.includes("script-src 'self'") || r.headers.get("cache-control") !== "no-cache") throw new Error(`${r.status} ${csp}`);
  });
  await check("a bad token shows the 401 page", async () => {
    expectDenied = true;
    await signIn("s1_not_a_real_token");
    await page.getByTestId("denied").waitFor();
    if (!(await page.getByTestId("denied").innerText()).includes("401")) throw new Error("no 401 on the page");
    await shot("denied");
    await page.click("text=Sign in with another token");
    await page.locator("#token").waitFor();
    expectDenied = false;
  });
  await check("sign in and see the datasets list", async () => {
    ds = await call("POST", "/api/datasets", { dataset_slug: `e2e_${uid}`, symbol: "E2E", granularity: "1h" });
    await signIn(TOKEN);
    await page.getByRole("heading", { name: "Datasets" }).waitFor();
    await page.fill("input[placeholder^='slug']", `e2e_${uid}`);
    await page.getByRole("link", { name: `e2e_${uid}` }).waitFor();
    await page.fill("input[placeholder^='slug']", "");
    await page.waitForTimeout(400);
    await shot("datasets");
  });
  await check("the page sends the token as Authorization: Bearer", async () => {
    const signedIn = apiCalls.filter((c) => c.bearer);
    if (!signedIn.length) throw new Error(`no API call carried a Bearer token (${apiCalls.length} calls)`);
    const stray = apiCalls.filter((c) => c.xToken);
    if (stray.length) throw new Error(`X-Stage1-Token sent by the page: ${stray[0].url}`);
  });
  await check("upload a file through the page and see its candles", async () => {
    await page.goto(`${BASE}/datasets/${ds.dataset_slug}/upload`);
    await page.getByTestId("file").setInputFiles({ name: "bars.csv", mimeType: "text/csv", buffer: Buffer.from(ohlcvCsv()) });
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByTestId("import-done").waitFor({ timeout: 45000 });
    await shot("upload");
    await page.getByRole("link", { name: "See the candles" }).click();
    await page.locator("[data-testid=price-chart][data-candles]:not([data-candles='0'])").waitFor({ timeout: 20000 });
    await page.waitForTimeout(300);
    await shot("dataset");
  });
  await check("open a run and see its folds and predictions", async () => {
    runs = [await call("POST", "/api/runs", runBody(ds.dataset_id, 3)), await call("POST", "/api/runs", runBody(ds.dataset_id, 6))];
    await page.goto(`${BASE}/runs/${runs[0].run_id}`);
    await page.getByTestId("folds-table").locator("tbody tr").nth(2).waitFor();
    await page.locator("[data-testid=price-chart][data-candles]:not([data-candles='0'])").waitFor();
    await page.waitForTimeout(400);
    await shot("run");
  });
  await check("runs table: filter, pick a metric column, compare two runs", async () => {
    await page.goto(`${BASE}/runs`);
    await page.fill("input[placeholder='slug or id']", ds.dataset_slug);
    await page.getByRole("button", { name: "Apply" }).click();
    await page.getByTestId("runs-table").locator("tbody tr").nth(1).waitFor();
    await page.getByText("Columns (").waitFor();
    await page.getByLabel(`select run ${runs[0].run_id}`).check();
    await page.getByLabel(`select run ${runs[1].run_id}`).check();
    await shot("runs");
    await page.getByRole("button", { name: "Compare selected" }).click();
    const differing = page.getByTestId("compare-table").locator("tr.differs", { hasText: "max_depth" });
    await differing.waitFor();
    await page.getByTestId("line-chart").waitFor();
    await shot("compare");
  });
  await check("simulation: equity, trades and buckets", async () => {
    const trades = [];
    for (let i = 0; i < 40; i++) trades.push({ trade_index: i, bar_timestamp: START + (210 + i * 7) * HOUR, side: i % 2 ? "long" : "short", entry_price: 100, exit_price: 100 + Math.sin(i), quantity: 1, pnl: Math.sin(i), return_pct: Math.sin(i) });
    sim = await call("POST", "/api/simulations", { run_id: runs[0].run_id, dataset_id: ds.dataset_id, name: "e2e sim", trades });
    await page.goto(`${BASE}/simulations/${sim.simulation_id}`);
    await page.getByText("PnL per trade").waitFor();
    await page.locator("[data-testid=price-chart][data-candles]:not([data-candles='0'])").waitFor();
    await page.getByTestId("line-chart").waitFor();
    await page.waitForTimeout(300);
    await shot("simulation");
  });
  await check("SQL console: run a query, see QuestDB's error, export it", async () => {
    await page.goto(`${BASE}/sql`);
    expectBadSql = true;
    await page.fill("#sql", "select * from no_such_table_e2e");
    await page.getByRole("button", { name: /^Run/ }).click();
    await page.getByTestId("error").filter({ hasText: "does not exist" }).waitFor();
    expectBadSql = false;
    await page.fill("#sql", `select * from ${ds.ohlcv_measurement} limit 20`);
    await page.getByRole("button", { name: /^Run/ }).click();
    await page.getByTestId("sql-results").locator("tbody tr").nth(19).waitFor();
    await page.getByRole("button", { name: "Export CSV" }).click();
    await page.getByTestId("export-link").waitFor({ timeout: 30000 });
    await shot("sql");
  });
  await check("jobs: the import and export jobs are listed", async () => {
    await page.goto(`${BASE}/jobs`);
    await page.getByTestId("jobs-table").locator("tbody tr").first().waitFor();
    await shot("jobs");
  });
  await check("narrow window: the datasets page fits", async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(`${BASE}/`);
    await page.getByRole("heading", { name: "Datasets" }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`the page is ${overflow}px wider than the window`);
    await shot("narrow");
    await page.setViewportSize({ width: 1280, height: 800 });
  });
  await check("keyboard: Tab reaches the navigation and sign out", async () => {
    await page.goto(`${BASE}/`);
    await page.getByRole("heading", { name: "Datasets" }).waitFor();
    const seen = [];
    for (let i = 0; i < 8; i++) { await page.keyboard.press("Tab"); seen.push(await page.evaluate(() => document.activeElement?.textContent ?? "")); }
    if (!seen.includes("Runs") || !seen.includes("Sign out")) throw new Error(`focus went ${seen.join(" | ")}`);
  });
  await check("no console errors", async () => {
    if (consoleErrors.length) throw new Error(consoleErrors.slice(0, 5).join(" || "));
  });
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
  if (sim) await call("DELETE", `/api/simulations/${sim.simulation_id}`).catch(() => {});
  for (const r of runs) await call("DELETE", `/api/runs/${r.run_id}`).catch(() => {});
  if (ds) await call("DELETE", `/api/datasets/${ds.dataset_id}?cascade=true&drop_questdb=true`).catch(() => {});
}
const failed = results.filter(([, ok]) => !ok).length;
console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
