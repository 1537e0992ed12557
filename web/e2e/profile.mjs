// Where the page's main thread spends its time from page open until the model is ready:
// Chrome's sampling profiler (CDP), self time per function, top 40. Function names need
// a wasm with its name section: copy the wasm-bindgen output over the built one, e.g.
//   cp ~/.cache/megaqa/target-web/wasm-bindgen/release/megaqa-web_bg.wasm dist/
// (the build's wasm-opt strips names).   node profile.mjs DIST [?query]
import { chromium } from "playwright-core";
import { serve } from "./serve.mjs";

const [dist, query = ""] = process.argv.slice(2);
if (!dist) throw new Error("usage: node profile.mjs DIST [?query]");
const { base, server } = await serve(dist);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
const page = await (await browser.newContext()).newPage();
const cdp = await page.context().newCDPSession(page);
await cdp.send("Profiler.enable");
await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
await cdp.send("Profiler.start");
await page.goto(base + query);
await page.waitForSelector("[data-testid=ready]", { timeout: 180_000 });
const { profile } = await cdp.send("Profiler.stop");
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
profile.samples.forEach((id, i) => {
  const name = nodes.get(id).callFrame.functionName || "(anonymous)";
  self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
});
for (const [name, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(ms.toFixed(0).padStart(6), "ms ", name.slice(0, 150));
}
await browser.close();
server.close();
