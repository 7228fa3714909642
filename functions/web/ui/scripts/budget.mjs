// After `vite build`: the initial-JS budget and the file list the web function serves.
// Initial JS = the entry chunk and every chunk it imports statically (what index.html loads before
// the first paint); lazily loaded pages and charts are not counted. Over the budget: exit 1.
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, relative } from "node:path";

const BUDGET_GZIP_BYTES = 300 * 1024;
const dist = new URL("../../dist/", import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(join(dist, ".vite/manifest.json"), "utf8"));

const seen = new Set();
function visit(key) {
  if (seen.has(key)) return;
  seen.add(key);
  for (const dep of manifest[key].imports ?? []) visit(dep);
}
for (const [key, chunk] of Object.entries(manifest)) if (chunk.isEntry) visit(key);
let gz = 0;
let raw = 0;
for (const key of seen) {
  const body = readFileSync(join(dist, manifest[key].file));
  raw += body.length;
  gz += gzipSync(body, { level: 9 }).length;
}

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [relative(dist, path).split("\\").join("/")];
  });
}
const files = walk(dist).filter((f) => !f.startsWith(".vite/")).sort();
writeFileSync(join(dist, "stage1-manifest.json"), JSON.stringify({ files, initial_js_gzip: gz }, null, 1));

const kb = (n) => (n / 1024).toFixed(1);
console.log(`initial JS: ${kb(gz)} KB gzip (${kb(raw)} KB raw, ${seen.size} chunks); budget ${kb(BUDGET_GZIP_BYTES)} KB`);
if (gz > BUDGET_GZIP_BYTES) {
  console.error(`bundle budget exceeded: ${kb(gz)} KB gzip > ${kb(BUDGET_GZIP_BYTES)} KB`);
  process.exit(1);
}
