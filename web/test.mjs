// Opens the page in headless Chromium with WebGPU, waits for the digit model and then the
// conformance suite's quick set (?check=quick), and fails on a console error, a failed
// run, a wrong prediction among the eight shown, a held-out count other than the native
// run's, or any conformance case that fails. Then it picks a weights file and images as a
// user would and fails unless the page's top-5 are `vgg infer`'s on this machine (NATIVE_INFER:
// its --json output for IMAGES with WEIGHTS). Last, the quick benchmark must measure every row.
// Leaves the conformance report and a screenshot of the page in target/browser/.
// Usage: node test.mjs URL NATIVE_CORRECT WEIGHTS NATIVE_INFER IMAGE...
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

const [url, native, weights, nativeInfer, ...images] = process.argv.slice(2);
const fail = (why) => {
  console.error(`browser test FAILED: ${why}`);
  process.exit(1);
};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => {
    console.log(`[page ${m.type()}] ${m.text()}`);
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${url}?check=quick`);
  // SwiftShader under Chromium compiles and runs everything on the CPU: minutes at most.
  await page.waitForFunction(() => document.body.dataset.state, null, { timeout: 600_000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  const status = await page.evaluate(() => document.getElementById("status").textContent);
  if (state !== "done") fail(status);
  const r = JSON.parse(await page.evaluate(() => document.getElementById("result").textContent));
  console.log(`adapter: ${r.adapter}`);
  for (const p of r.predictions) {
    console.log(`  held-out digit ${p.digit}: label ${p.label}, predicted ${p.predicted}`);
    if (p.label !== p.predicted) fail(`digit ${p.digit}: label ${p.label}, predicted ${p.predicted}`);
  }
  console.log(`${r.correct} of ${r.of} held-out digits right in ${(r.ms / 1000).toFixed(2)} s`);
  if (String(r.correct) !== native) fail(`${r.correct} right in the page, ${native} natively`);
  await page.waitForFunction(() => document.body.dataset.check, null, { timeout: 900_000 });
  const check = await page.evaluate(() => document.body.dataset.check);
  if (check === "error") {
    fail(await page.evaluate(() => document.getElementById("check-status").textContent));
  }
  const reportJson = await page.evaluate(() => document.getElementById("report").textContent);
  const report = JSON.parse(reportJson);
  // The page's report as `vgg check --json` and `--markdown` write them, for committing.
  mkdirSync("target/browser", { recursive: true });
  writeFileSync("target/browser/conformance.json", reportJson);
  writeFileSync("target/browser/conformance.md", await page.evaluate(() => window.conformanceMarkdown));
  const a = report.adapters[0];
  console.log(`conformance on ${a.name} (vendor ${a.driver}, architecture ${a.driver_info}):`);
  for (const w of a.workarounds) console.log(`  driver issue worked around: ${w}`);
  for (const s of a.skipped) console.log(`  skipped ${s.op}: ${s.reason}`);
  for (const row of a.results.filter((x) => !x.pass)) console.log(`  FAIL ${row.op} ${row.shape}: ${row.failure}`);
  console.log(`  ${a.passed} passed, ${a.failed} failed, ${a.skipped.length} skipped in ${a.seconds.toFixed(1)} s`);
  if (check !== "done" || a.failed || !a.passed) fail(`${a.failed} conformance cases failed`);

  // A user's weights file and images, picked through the page's inputs.
  await page.setInputFiles("#weights", weights);
  await page.waitForFunction(() => document.body.dataset.model, null, { timeout: 120_000 });
  const model = await page.evaluate(() => document.getElementById("model-status").textContent);
  console.log(model);
  if (await page.evaluate(() => document.body.dataset.model) !== "loaded") fail(model);
  await page.setInputFiles("#images", images);
  await page.waitForFunction((n) => document.body.dataset.classified == n, images.length, {
    timeout: 300_000,
  });
  const got = JSON.parse(await page.evaluate(() => document.getElementById("classified-json").textContent));
  const want = JSON.parse(readFileSync(nativeInfer, "utf8")).results;
  for (const [i, w] of want.entries()) {
    const g = got[i];
    if (!g || g.file !== basename(w.file) || !g.top) fail(`image ${w.file}: ${JSON.stringify(g)}`);
    const line = g.top.map((t) => `${t.label} ${t.probability.toFixed(4)}`).join(", ");
    console.log(`  ${g.file}: ${line}`);
    // f32 on two drivers: the same classes in the same order, probabilities to 1e-4.
    for (const [k, t] of w.top.entries()) {
      const p = g.top[k];
      if (!p || p.class !== t.class || p.label !== t.label || Math.abs(p.probability - t.probability) > 1e-4) {
        fail(`${g.file} top ${k + 1}: ${JSON.stringify(p)} in the page, ${JSON.stringify(t)} natively`);
      }
    }
  }
  if (errors.length) fail(`console errors:\n${errors.join("\n")}`);

  // The quick benchmark, from its button: every row measured, none failed.
  await page.click("#bench-quick");
  await page.waitForFunction(() => document.body.dataset.bench, null, { timeout: 900_000 });
  if (await page.evaluate(() => document.body.dataset.bench) !== "done") {
    fail(await page.evaluate(() => document.getElementById("bench-progress").textContent));
  }
  const b = await page.evaluate(() => window.benchReport);
  console.log(await page.evaluate(() => document.getElementById("bench-table").textContent));
  if (b.failures.length) fail(`bench rows failed:\n${b.failures.join("\n")}`);
  const timed = b.kernels.filter((k) => k.median_ms > 0 && Number.isFinite(k.median_ms));
  if (!b.peak || timed.length !== b.kernels.length || b.kernels.length < 20 || !b.networks.length) {
    fail(`bench: ${b.kernels.length} kernel rows (${timed.length} timed), ${b.networks.length} network rows`);
  }
  // The page's top (the digits, the user's images, the benchmark's end): the whole page is
  // hundreds of rows long.
  await page.setViewportSize({ width: 1280, height: 1800 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: "target/browser/page.png" });
  console.log("browser test passed (report and screenshot in target/browser/)");
} finally {
  await browser.close();
}
