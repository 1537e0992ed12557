// Drives the built megaqa web app in real headless Chromium (Debian's, through
// playwright-core): serves DIST on 127.0.0.1, waits for the default model, asks
// each case of CASES (a JSON list of {passage_file, question}, or {docs: [files],
// question} to ask the documents) and prints one JSON
// line with what the page shows for each (highlight, span, backend, timings; a screenshot
// of the answer panel each, and of the model panel), and
// when the page was loaded, ready (GPU kernels compiled) and answered first, with the
// main thread's long tasks until that first answer. Saves a screenshot and the
// session export into OUT. With --mode webgpu Chromium gets --enable-unsafe-webgpu
// (SwiftShader); with --mode cpu it does not, so the app must fall back to the CPU.
// Then it reloads the page offline and checks that the model comes back from
// browser storage.
//
// node drive.mjs --dist DIR --mode webgpu|cpu --out DIR --cases CASES.json [--query ?batch=1] [--cases-only 1] [--timeout-s 180] [--then-load URL] [--profile DIR] [--model-file PATH] [--then-fail URL]
import { readFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), [])
);
for (const k of ["dist", "mode", "out", "cases"]) {
  if (!args[k]) throw new Error(`missing --${k}`);
}
const { base, server } = await serve(args.dist);

const flags = [
  "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
];
if (args.mode === "webgpu") flags.push("--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-angle=swiftshader");
// --profile DIR: a profile on disk, as a user's browser has (browser storage is then
// on disk; a fresh context keeps it in memory, in another process).
const launch = { executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: flags };
const options = { acceptDownloads: true, viewport: { width: 1280, height: 1000 } };
const browser = args.profile ? null : await chromium.launch(launch);
const context = args.profile
  ? await chromium.launchPersistentContext(args.profile, { ...launch, ...options })
  : await browser.newContext(options);
const page = await context.newPage();
const console_lines = [];
page.on("console", (m) => console_lines.push(`${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => console_lines.push(`pageerror: ${e.message}`));

// Main-thread tasks over 50 ms (the browser's "long tasks"), from page open on: what
// freezes typing and scrolling while the page loads, compiles or answers.
// When each answer appears in the page (the export button counts them), by the page's
// clock: waitForSelector polls at up to 500 ms intervals, which would be measured too.
await context.addInitScript(() => {
  window.__answeredAt = {};
  new MutationObserver(() => {
    const m = document.getElementById("export")?.textContent.match(/\((\d+) question/);
    if (m && !(m[1] in window.__answeredAt)) window.__answeredAt[m[1]] = Date.now();
  }).observe(document, { subtree: true, childList: true, characterData: true });
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longTasks.push([Math.round(e.startTime), Math.round(e.duration)]);
  }).observe({ type: "longtask", buffered: true });
});
const longTasks = async () => {
  const all = await page.evaluate(() => window.__longTasks);
  return { count: all.length, over_200ms: all.filter(([, d]) => d > 200).length, max_ms: Math.max(0, ...all.map(([, d]) => d)), all };
};

// In the page: the model panel names `name` as the loaded model, and loading is over.
const loadedIs = (name) =>
  document.querySelector("[data-testid=model] dd")?.textContent === name &&
  [...document.querySelectorAll("button")].find((b) => b.textContent === "Load")?.disabled === false;
// Loads the model at `url` through the page's URL box.
const loadUrl = async (url) => {
  await page.fill("#model-url", url);
  await page.click("button:has-text('Load')");
};
// Asks the question in the box again: its timings and highlight (null: no answer).
const askAgain = async () => {
  const before = await page.textContent("#export");
  await page.press("#question", "Enter");
  await page.waitForFunction((b) => document.getElementById("export")?.textContent !== b, before, { timeout: WAIT_MS });
  return {
    timings: (await page.textContent("[data-testid=timings]")).trim(),
    highlight: await page.$eval("[data-testid=highlight]", (m) => m.textContent).catch(() => null),
    export: (await page.textContent("#export")).trim(),
  };
};
// How long to wait for loading, kernels and each answer (--timeout-s; 180 s).
const WAIT_MS = (Number(args["timeout-s"]) || 180) * 1000;

// Waits until SELECTOR is in the page, told by a MutationObserver in the page: what the
// first answer is timed by must not wait on polling. waitForSelector polls on animation
// frames, which a busy 2-core machine delays: it saw the loaded model 0.25-0.4 s after
// the page showed it.
async function appeared(selector) {
  await page.evaluate(
    ([sel, ms]) =>
      new Promise((resolve, reject) => {
        if (document.querySelector(sel)) return resolve();
        const timer = setTimeout(() => reject(new Error(`${sel} did not appear in ${ms} ms`)), ms);
        const o = new MutationObserver(() => {
          if (!document.querySelector(sel)) return;
          o.disconnect();
          clearTimeout(timer);
          resolve();
        });
        o.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
      }),
    [selector, WAIT_MS],
  );
}
const result = { mode: args.mode };
try {
  const t0 = Date.now();
  await page.goto(base + (args.query ?? ""));
  await appeared("[data-testid=model]");
  result.load_ms = Date.now() - t0;
  result.backend = (await page.textContent("[data-testid=backend]")).trim();
  result.compute = (await page.textContent("[data-testid=compute]")).trim();
  const card = await page.$("[data-testid=card]");
  result.card = card ? (await card.textContent()).trim() : null;
  // On WebGPU the app compiles the model's kernels right after loading.
  await appeared("[data-testid=ready]");
  result.ready_ms = Date.now() - t0;
  result.ready = (await page.textContent("[data-testid=ready]")).trim();

  result.cases = [];
  const cases = JSON.parse(await readFile(args.cases, "utf8"));
  for (const [i, c] of cases.entries()) {
    if (c.docs) {
      await page.setInputFiles("#docs", c.docs);
      await page.waitForSelector("[data-testid=docs]", { timeout: 60_000 });
      await page.setChecked("#use-docs", true);
    } else {
      if (await page.$("#use-docs")) await page.setChecked("#use-docs", false);
      await page.fill("#passage", await readFile(c.passage_file, "utf8"));
    }
    await page.fill("#question", c.question);
    const t1 = Date.now();
    await page.press("#question", "Enter");
    // The export button counts the answered questions: wait for this one's.
    await page.waitForSelector(`#export:has-text("(${i + 1} question")`, { timeout: WAIT_MS });
    const at = (await page.evaluate((n) => window.__answeredAt[n], i + 1)) ?? Date.now();
    const r = { question: c.question, ask_ms: at - t1 };
    if (i === 0) {
      result.first_answer_ms = at - t0;
      result.long_tasks_to_first_answer = await longTasks();
    }
    const mark = await page.$("[data-testid=highlight]");
    if (mark) {
      r.highlight = await mark.textContent();
      r.start = Number(await mark.getAttribute("data-start"));
      r.end = Number(await mark.getAttribute("data-end"));
    }
    r.no_answer = (await page.$("[data-testid=no-answer]")) !== null;
    const source = await page.$("[data-testid=source]");
    if (source) {
      r.source = (await source.textContent()).trim();
      r.document = await source.getAttribute("data-document");
      r.passage_start = Number(await source.getAttribute("data-start"));
    }
    r.timings = (await page.textContent("[data-testid=timings]")).trim();
    // The answer panel as the user sees it (the answer, or "no answer", highlighted).
    await mkdir(args.out, { recursive: true });
    await page.locator("section[aria-labelledby=answer-h]").screenshot({ path: join(args.out, `answer-${args.mode}-${i + 1}.png`) });
    if (i === 0) {
      // The model panel: the model loaded, its card, the backend.
      await page.locator("section[aria-labelledby=model-h]").screenshot({ path: join(args.out, `model-${args.mode}.png`) });
    }
    result.cases.push(r);
  }
  await mkdir(args.out, { recursive: true });
  await page.screenshot({ path: join(args.out, `screenshot-${args.mode}.png`), fullPage: true });

  // --cases-only 1 stops here: a script measuring a big model's load and answers.
  if (!args["cases-only"]) {
    // The same page on a phone-sized screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(args.out, `phone-${args.mode}.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 1000 });

    // A model URL that 404s, then one too big: one line in the page naming the file and
    // why, and the model already loaded still answers.
    await loadUrl("./models/missing.safetensors");
    await page.waitForSelector("[data-testid=error]", { timeout: 60_000 });
    result.bad_url_error = (await page.textContent("[data-testid=error]")).trim();
    // A model too big for the tab's wasm memory (the test serves only its header):
    // refused from the header, with the memory it needs, before the rest downloads.
    await loadUrl("./models/too-big.safetensors");
    await page.waitForSelector("[data-testid=error]:has-text('too-big')", { timeout: 60_000 });
    result.too_big_error = (await page.textContent("[data-testid=error]")).trim();
    await page.locator("section[aria-labelledby=ask-h]").screenshot({ path: join(args.out, `big-model-${args.mode}.png`) });
    await page.press("#question", "Enter");
    const n = result.cases.length + 1;
    await page.waitForSelector(`#export:has-text("(${n} question")`, { timeout: WAIT_MS });
    result.answered_after_bad_url = true;

    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export")]);
    result.export = join(args.out, `session-${args.mode}.json`);
    await download.saveAs(result.export);
  }
  // --model-file PATH: the same model picked as a local file (read in the worker,
  // kept in browser storage as it is); it answers the next question.
  if (args["model-file"]) {
    const name = args["model-file"].split("/").pop();
    await page.setInputFiles("#model-files", args["model-file"]);
    await page.waitForFunction(loadedIs, name, { timeout: WAIT_MS });
    await page.waitForSelector("[data-testid=ready]", { timeout: WAIT_MS });
    result.model_from_file = (await page.textContent("[data-testid=model]")).trim();
    result.answer_from_file = await askAgain();
  }
  // --then-load URL: load another model through the page's URL box (a new worker
  // replaces one holding a big model) and ask the first case again.
  if (args["then-load"]) {
    const t2 = Date.now();
    await loadUrl(args["then-load"]);
    await page.waitForFunction(loadedIs, args["then-load"], { timeout: WAIT_MS });
    const loaded_ms = Date.now() - t2;
    const model = (await page.textContent("[data-testid=model]")).trim();
    result.then_load = { url: args["then-load"], loaded_ms, model, ...(await askAgain()) };
  }
  // --then-fail URL: a model that passes the checks before its new worker starts but
  // does not load there: the model before it comes back from browser storage, answering.
  if (args["then-fail"]) {
    await loadUrl(args["then-fail"]);
    await page.waitForSelector("[data-testid=error]:has-text('is loaded again')", { timeout: WAIT_MS });
    // The model from storage is named as stored: its file name.
    await page.waitForFunction(loadedIs, (args["then-load"] ?? "").split("/").pop(), { timeout: WAIT_MS });
    result.then_fail = {
      error: (await page.textContent("[data-testid=error]")).trim(),
      model: (await page.textContent("[data-testid=model]")).trim(),
      answer: await askAgain(),
    };
  }
  if (!args["cases-only"]) {
    // Offline: the app shell from the service worker, the model from browser storage.
    await page.evaluate(async () => { await navigator.serviceWorker.ready; });
    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector("[data-testid=model]", { timeout: WAIT_MS });
    result.offline_reload = true;
    result.cached_models = (await page.textContent("[data-testid=cached]")).trim();
    // Documents come back from browser storage too.
    result.documents_after_reload = await page
      .waitForSelector("[data-testid=docs]", { timeout: 20_000 })
      .then((e) => e.textContent())
      .then((t) => t.trim())
      .catch(() => null);
  }
} catch (e) {
  result.error = String(e);
  try {
    await mkdir(args.out, { recursive: true });
    await page.screenshot({ path: join(args.out, `failure-${args.mode}.png`), fullPage: true });
  } catch {}
} finally {
  result.console = console_lines.slice(-20);
  await writeFile(join(args.out, `console-${args.mode}.txt`), console_lines.join("\n")).catch(() => {});
  await (browser ?? context).close();
  server.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
