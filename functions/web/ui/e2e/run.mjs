// End-to-end tests of the web client in Debian's headless Chromium (playwright-core, no browser
// download) against a running gateway. Usage:
//   STAGE1_GATEWAY_URL=http://127.0.0.1:3116 STAGE1_E2E_TOKEN=<read+write token> node e2e/run.mjs [--shots DIR]
// Prints one line per check and a summary line `e2e: N passed, M failed` (exit 1 on any failure).
import { mkdtempSync, rmSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
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
// A bigger CSV for the chunked uploads: `rows` hourly bars from `start` (~70 bytes a row).
function bigCsv(rows, start = START) {
  const out = ["timestamp,open,high,low,close,volume"];
  for (let i = 0; i < rows; i++) {
    const o = 100 + Math.sin(i / 50) * 10, c = o * (1 + ((i % 9) - 4) / 1000);
    out.push(`${new Date((start + i * HOUR) * 1000).toISOString()},${o.toFixed(4)},${(Math.max(o, c) * 1.002).toFixed(4)},${(Math.min(o, c) * 0.998).toFixed(4)},${c.toFixed(4)},${100 + (i % 23)}`);
  }
  return out.join("\n") + "\n";
}
// The dataset's row count once the import's rows are visible (the job ends after its WAL is applied).
async function rowCount(id) {
  return (await call("GET", `/api/datasets/${id}`)).ohlcv_row_count;
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
let expectPutFail = false; // the resume step makes chunk PUTs fail on purpose
let expectConflict = false; // the restart step resumes an upload whose job ended: a 409
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
page.on("console", (m) => { if (m.type() === "error" && !(expectDenied && /401|403/.test(m.text())) && !(expectBadSql && /400/.test(m.text())) && !(expectPutFail && /ERR_FAILED|Failed to load resource|403/.test(m.text())) && !(expectConflict && /409/.test(m.text()))) consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));
// Every API call the page makes with a token carries it as Authorization: Bearer, never X-Stage1-Token.
const apiCalls = [];
page.on("request", (r) => {
  if (!r.url().startsWith(BASE + "/api/")) return;
  const h = r.headers();
  apiCalls.push({ url: r.url(), bearer: (h.authorization ?? "").startsWith("Bearer "), xToken: "x-stage1-token" in h });
});
// The chunk PUTs to the bucket (presigned URLs, another origin): index -> statuses seen.
const chunkPuts = [];
page.on("requestfinished", async (r) => {
  const m = r.method() === "PUT" && /chunk-(\d+)\./.exec(r.url());
  if (m) chunkPuts.push({ index: Number(m[1]), status: (await r.response())?.status() ?? 0 });
});
page.on("requestfailed", (r) => {
  const m = r.method() === "PUT" && /chunk-(\d+)\./.exec(r.url());
  if (m) chunkPuts.push({ index: Number(m[1]), status: 0 });
});
// The one-object uploads' requests to the bucket (the presigned POST, or the part PUTs of a multipart one).
const objectCalls = [];
const objectCall = (r) => !r.url().startsWith(BASE) && !/chunk-\d+\./.test(r.url()) && ["POST", "PUT"].includes(r.method());
const partOf = (url) => Number(new URL(url).searchParams.get("partNumber") ?? 0);
page.on("requestfinished", async (r) => {
  if (objectCall(r)) objectCalls.push({ method: r.method(), part: partOf(r.url()), status: (await r.response())?.status() ?? 0 });
});
page.on("requestfailed", (r) => { if (objectCall(r)) objectCalls.push({ method: r.method(), part: partOf(r.url()), status: 0 }); });
// The network drops the first request to the bucket that `first` picks (the page retries it; the
// retry really goes to the bucket). Returns what removes the route.
async function dropFirst(first) {
  let dropped = 0;
  const handler = (route) => (first(route.request()) && !dropped++ ? route.abort("failed") : route.continue());
  const bucket = (url) => !url.href.startsWith(BASE) && !/chunk-\d+\./.test(url.href);
  await page.route(bucket, handler);
  return () => page.unroute(bucket, handler);
}
const tmp = mkdtempSync(join(tmpdir(), "stage1-e2e-files-"));
const shot = async (name) => { if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`) }); };
async function signIn(token) {
  await page.goto(BASE + "/");
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(BASE + "/");
  await page.fill("#token", token);
  await page.click("button[type=submit]");
}

let ds, runs = [], sim;
const extra = []; // datasets of the chunked uploads
let kept = null, resumeDs = null; // the resume record of the cut-off upload, and its dataset
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
  await check("upload a file through the page (its first POST to the bucket dropped by the network: retried) and see its candles", async () => {
    objectCalls.length = 0;
    const drop = await dropFirst((r) => r.method() === "POST");
    expectPutFail = true;
    await page.goto(`${BASE}/datasets/${ds.dataset_slug}/upload`);
    await page.getByTestId("file").setInputFiles({ name: "bars.csv", mimeType: "text/csv", buffer: Buffer.from(ohlcvCsv()) });
    await page.getByRole("button", { name: "Upload" }).click();
    try { await page.getByTestId("import-done").waitFor({ timeout: 45000 }); } finally { await drop(); expectPutFail = false; }
    await shot("upload");
    const posts = objectCalls.filter((c) => c.method === "POST").map((c) => c.status);
    if (posts.length !== 2 || posts[0] !== 0 || !(posts[1] >= 200 && posts[1] < 300)) throw new Error(`POSTs to the bucket: ${JSON.stringify(objectCalls)}`);
    const n = await rowCount(ds.dataset_id);
    if (n !== N) throw new Error(`the dataset has ${n} rows, the file ${N}`);
    await page.getByRole("link", { name: "See the candles" }).click();
    await page.locator("[data-testid=price-chart][data-candles]:not([data-candles='0'])").waitFor({ timeout: 20000 });
    await page.waitForTimeout(300);
    await shot("dataset");
  });
  // Multipart needs a gateway whose STAGE1_MULTIPART_THRESHOLD_BYTES is below the file (parts are at
  // least 16 MiB): STAGE1_E2E_MULTIPART=1 runs it (a 34 MB CSV: 3 parts); the default suite does not.
  if (process.env.STAGE1_E2E_MULTIPART === "1") await check("multipart: part 2's first PUT dropped by the network, retried; the dataset has every row", async () => {
    const rows = 540000, body = bigCsv(rows);
    const count = Math.ceil(body.length / (16 * 1024 * 1024)); // the server's part size for this size: 16 MiB
    const d = await call("POST", "/api/datasets", { dataset_slug: `e2e_multipart_${uid}`, symbol: "E2EM", granularity: "1h" });
    extra.push(d);
    const path = join(tmp, "multipart.csv");
    writeFileSync(path, body);
    objectCalls.length = 0;
    let completeBody = null;
    const onComplete = (r) => { if (r.method() === "POST" && /\/api\/uploads\/[^/]+\/complete$/.test(r.url())) completeBody = r.postData(); };
    page.on("request", onComplete);
    const drop = await dropFirst((r) => r.method() === "PUT" && partOf(r.url()) === 2);
    expectPutFail = true;
    await page.goto(`${BASE}/datasets/${d.dataset_slug}/upload`); // below the chunk threshold (128 MiB): one object
    await page.getByTestId("file").setInputFiles(path);
    await page.getByRole("button", { name: "Upload" }).click();
    try { await page.getByTestId("import-done").waitFor({ timeout: 120000 }); } finally { await drop(); expectPutFail = false; page.off("request", onComplete); }
    const puts = objectCalls.filter((c) => c.method === "PUT").sort((a, b) => a.part - b.part || a.status - b.status);
    const want = Array.from({ length: count }, (_, i) => (i === 1 ? "2:0,2:200" : `${i + 1}:200`)).join();
    if (count < 3 || puts.map((c) => `${c.part}:${c.status}`).join() !== want) throw new Error(`part PUTs: ${JSON.stringify(puts)}`);
    // The ETags the page read from the PUT answers (the bucket's CORS exposes ETag) went to `complete`.
    const sentParts = JSON.parse(completeBody ?? "{}").parts ?? [];
    if (sentParts.length !== count || sentParts.some((q, i) => q.part_number !== i + 1 || !/^"?[0-9a-f]{32}"?$/.test(q.etag)))
      throw new Error(`complete got ${completeBody}`);
    const n = await rowCount(d.dataset_id);
    if (n !== rows) throw new Error(`the dataset has ${n} rows, the file ${rows}`);
  });
  await check("a CSV of a few MB goes up in chunks through the page; the dataset has every row", async () => {
    const rows = 45000, body = bigCsv(rows);
    const d = await call("POST", "/api/datasets", { dataset_slug: `e2e_chunks_${uid}`, symbol: "E2EC", granularity: "1h" });
    extra.push(d);
    const path = join(tmp, "chunked.csv");
    writeFileSync(path, body);
    chunkPuts.length = 0;
    // Chunk 2's first PUT is refused as an expired URL would be: the page asks for fresh URLs and goes on.
    let refused = 0;
    const expire = (route) => (refused++ ? route.continue() : route.fulfill({ status: 403, contentType: "application/xml",
      headers: { "Access-Control-Allow-Origin": "*" }, body: "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>" }));
    await page.route(/chunk-000002\.csv/, expire);
    expectPutFail = true;
    await page.goto(`${BASE}/datasets/${d.dataset_slug}/upload?chunk_threshold=1000000&chunk_bytes=400000`);
    await page.getByTestId("file").setInputFiles(path);
    await page.getByTestId("will-chunk").waitFor();
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByTestId("chunk-progress").waitFor();
    await page.getByTestId("import-done").waitFor({ timeout: 60000 });
    await page.unroute(/chunk-000002\.csv/, expire);
    expectPutFail = false;
    if (!chunkPuts.some((c) => c.index === 2 && c.status === 403)) throw new Error(`chunk 2 was not refused once: ${JSON.stringify(chunkPuts)}`);
    chunkPuts.splice(0, chunkPuts.length, ...chunkPuts.filter((c) => c.status !== 403));
    const expected = Math.ceil((body.length - 37) / 400000); // ~ the cut count (each cut moves to the next newline)
    const ok200 = chunkPuts.filter((c) => c.status === 200).map((c) => c.index).sort((a, b) => a - b);
    if (ok200.length < expected - 1 || new Set(ok200).size !== ok200.length || ok200[0] !== 1) throw new Error(`chunk PUTs ${JSON.stringify(chunkPuts)}`);
    await page.locator(`[data-testid=chunks-imported]`, { hasText: String(ok200.length) }).waitFor();
    await shot("upload-chunked");
    const n = await rowCount(d.dataset_id);
    if (n !== rows) throw new Error(`the dataset has ${n} rows, the file ${rows}`);
  });
  await check("resume: a chunked upload cut off after 3 chunks, picked again after a reload, sends only the missing chunks", async () => {
    const rows = 30000, body = bigCsv(rows, START + 7 * HOUR);
    const d = await call("POST", "/api/datasets", { dataset_slug: `e2e_resume_${uid}`, symbol: "E2ER", granularity: "1h" });
    extra.push(d);
    const path = join(tmp, "resume.csv");
    writeFileSync(path, body);
    const url = `${BASE}/datasets/${d.dataset_slug}/upload?chunk_threshold=1000000&chunk_bytes=300000`;
    // The network dies for every chunk after the third (each PUT is retried, then the page gives up).
    const cut = (route) => (Number(/chunk-(\d+)\./.exec(route.request().url())?.[1]) > 3 ? route.abort("failed") : route.continue());
    await page.route(/chunk-\d+\.csv/, cut);
    expectPutFail = true;
    chunkPuts.length = 0;
    await page.goto(url);
    await page.getByTestId("file").setInputFiles(path);
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByTestId("resume-hint").waitFor({ timeout: 30000 });
    const first = chunkPuts.filter((c) => c.status === 200).map((c) => c.index).sort((a, b) => a - b);
    if (JSON.stringify(first) !== "[1,2,3]") throw new Error(`first run sent ${JSON.stringify(chunkPuts)}`);
    // Each failing chunk was tried 3 times (network errors are retried), and the page names the one that gave up.
    const tries = chunkPuts.filter((c) => c.index === 4 && c.status === 0).length;
    const said = await page.getByTestId("error").innerText();
    if (tries !== 3 || !/chunk \d+ of \d+: .*\(after 3 attempts\)/.test(said)) throw new Error(`chunk 4 tried ${tries} times; the page said: ${said}`);
    await page.unroute(/chunk-\d+\.csv/, cut);
    expectPutFail = false;
    await shot("upload-cut-off");
    kept = await page.evaluate(() => Object.entries(localStorage).filter(([k]) => k.startsWith("stage1.upload:")));
    if (kept.length !== 1) throw new Error(`${kept.length} resume records kept`);
    resumeDs = d;
    await page.reload();
    chunkPuts.length = 0;
    await page.getByTestId("file").setInputFiles(path);
    await page.getByTestId("earlier").filter({ hasText: /3 of \d+ chunks already on the server/ }).waitFor();
    await page.getByRole("button", { name: "Upload" }).click();
    const note = await page.getByTestId("upload-note").innerText();
    const m = /resuming: (\d+) of (\d+) chunks already on the server/.exec(note);
    if (!m || m[1] !== "3") throw new Error(`note: ${note}`);
    await page.getByTestId("import-done").waitFor({ timeout: 60000 });
    const second = chunkPuts.map((c) => c.index).sort((a, b) => a - b);
    const want = Array.from({ length: Number(m[2]) - 3 }, (_, i) => i + 4);
    if (JSON.stringify(second) !== JSON.stringify(want) || chunkPuts.some((c) => c.status !== 200)) throw new Error(`the resume sent ${JSON.stringify(chunkPuts)}, not chunks 4..${m[2]}`);
    await shot("upload-resumed");
    const n = await rowCount(d.dataset_id);
    if (n !== rows) throw new Error(`the dataset has ${n} rows, the file ${rows}`);
    const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("stage1.upload:")).length);
    if (left) throw new Error(`${left} upload(s) still kept for resume after the job ended`);
  });
  await check("an upload the server no longer resumes (its job ended, as an expired one's has) starts again with a message", async () => {
    if (!kept || !resumeDs) throw new Error("needs the resume check");
    // The record of the upload just completed, put back: the server answers 409 to its resume.
    await page.evaluate(([k, v]) => localStorage.setItem(k, v), kept[0]);
    expectConflict = true;
    await page.goto(`${BASE}/datasets/${resumeDs.dataset_slug}/upload?chunk_threshold=1000000&chunk_bytes=300000`);
    chunkPuts.length = 0;
    await page.getByTestId("file").setInputFiles(join(tmp, "resume.csv"));
    await page.getByTestId("earlier").filter({ hasText: "its job is COMPLETED" }).waitFor();
    await page.getByRole("button", { name: "Upload" }).click();
    await page.getByTestId("upload-note").filter({ hasText: /cannot be resumed \(the upload.s job is COMPLETED.*\): starting again/ }).waitFor();
    await page.getByTestId("import-done").waitFor({ timeout: 60000 });
    expectConflict = false;
    const sent = chunkPuts.filter((c) => c.status === 200).map((c) => c.index).sort((a, b) => a - b);
    if (sent[0] !== 1 || sent.length !== 7) throw new Error(`sent ${JSON.stringify(sent)}, not every chunk`);
    await shot("upload-restarted");
    const n = await rowCount(resumeDs.dataset_id);
    if (n !== 30000) throw new Error(`the dataset has ${n} rows after the same file twice`);
  });
  await check("a bad row in chunk 2 fails the job naming the chunk, and the page stops sending the rest", async () => {
    const lines = bigCsv(20000).split("\n");
    lines[1400] = lines[1400].replace(/,[^,]+,/, ",not_a_number,"); // ~98 KB in: chunk 2 of 64 KiB chunks
    const d = await call("POST", "/api/datasets", { dataset_slug: `e2e_badchunk_${uid}`, symbol: "E2EB", granularity: "1h" });
    extra.push(d);
    const path = join(tmp, "bad.csv");
    writeFileSync(path, lines.join("\n"));
    // Chunks 5+ wait until the page has seen the job fail (and a little more): then the page must stop.
    const hold = async (route) => {
      if (Number(/chunk-(\d+)\./.exec(route.request().url())?.[1]) >= 5) {
        await page.getByTestId("job-error").waitFor({ timeout: 30000 }).catch(() => {});
        await new Promise((r) => setTimeout(r, 500));
      }
      await route.continue();
    };
    await page.route(/chunk-\d+\.csv/, hold);
    chunkPuts.length = 0;
    await page.goto(`${BASE}/datasets/${d.dataset_slug}/upload?chunk_threshold=100000&chunk_bytes=65536`);
    await page.getByTestId("file").setInputFiles(path);
    await page.getByRole("button", { name: "Upload" }).click();
    const jobError = await page.getByTestId("job-error").innerText({ timeout: 30000 });
    await page.getByTestId("error").filter({ hasText: "no more chunks are sent" }).waitFor({ timeout: 30000 });
    await page.unroute(/chunk-\d+\.csv/, hold);
    await shot("upload-bad-chunk");
    if (!/chunk 2 of \d+/.test(jobError)) throw new Error(`job error: ${jobError.slice(0, 300)}`);
    const total = Number(/chunk 2 of (\d+)/.exec(jobError)[1]);
    const sent = chunkPuts.map((c) => c.index);
    if (total < 15 || Math.max(...sent) > 8) throw new Error(`${total} chunks; the page sent ${JSON.stringify(sent)}`);
    if (await page.getByTestId("resume-hint").count()) throw new Error("a resume hint for an upload whose job failed");
    const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("stage1.upload:")).length);
    if (left) throw new Error(`${left} resume record(s) kept for a failed job`);
    if ((await rowCount(d.dataset_id)) !== 0) throw new Error("rows reached the dataset of a failed import");
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
    // The datasets table fits too: no scrolling inside its card, its last column (QuestDB) in view.
    await page.locator("table tbody tr").first().waitFor();
    const t = await page.evaluate(() => {
      const box = document.querySelector("table")?.closest(".scroll");
      const last = [...document.querySelectorAll("table thead th")].filter((th) => th.getClientRects().length).pop();
      return { inner: box ? box.scrollWidth - box.clientWidth : -1, right: last?.getBoundingClientRect().right ?? 1e9, text: last?.textContent, width: window.innerWidth };
    });
    if (t.inner > 2 || t.right > t.width + 1 || t.text !== "QuestDB") throw new Error(`the datasets table does not fit: ${JSON.stringify(t)}`);
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
  for (const d of extra) await call("DELETE", `/api/datasets/${d.dataset_id}?cascade=true&drop_questdb=true`).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
}
const failed = results.filter(([, ok]) => !ok).length;
console.log(`e2e: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
