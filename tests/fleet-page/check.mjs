// Loads the coordinator's fleet page in the system Chromium (headless, through the pinned
// playwright-core) and prints what it rendered as JSON on stdout, for the Rust test
// `fleet_page` to compare with the coordinator's ledger.
//
//   node tests/fleet-page/check.mjs <page url> <token or "-"> <screenshot path> [expect-operators]
//
// With a token: waits until the page shows data (and, when given, that many operators),
// screenshots it and prints {state, operators: {op: {delegated, active, withdrawing, free,
// slashed}}, agents: [{agent, state, telemetry_age}], slashes: [{task, slashed, reason,
// when}], status}. Without ("-"): waits until the
// page shows it was refused and prints {state, numbers_shown}.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, token, screenshot, expectOperators] = process.argv.slice(2);
const CHROMIUM = process.env.PROOFRACK_CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 30000;

const profile = mkdtempSync(join(tmpdir(), "proofrack-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1400, height: 900 },
});
try {
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  if (token === "-") {
    await page.goto(url);
    await page.waitForSelector("body[data-state=refused]", { timeout: WAIT_MS });
    const shown = await page.$$eval("#operators tbody tr", (rows) => rows.length);
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({ state: "refused", numbers_shown: shown, url_after: page.url() }));
  } else {
    await page.goto(url + "#token=" + encodeURIComponent(token));
    await page.waitForSelector("body[data-state=ready]", { timeout: WAIT_MS });
    if (expectOperators) {
      await page.waitForFunction(
        (n) => document.querySelectorAll("#operators tbody tr").length >= n,
        Number(expectOperators), { timeout: WAIT_MS });
    }
    // Wait for one more refresh so what we read is a complete, current render.
    const first = await page.$eval("body", (b) => b.dataset.updatedMs);
    await page.waitForFunction((f) => document.body.dataset.updatedMs !== f, first, { timeout: WAIT_MS });
    const result = await page.evaluate(() => {
      const operators = {};
      for (const tr of document.querySelectorAll("#operators tbody tr")) {
        const f = (name) => tr.querySelector(`[data-field=${name}]`).textContent;
        operators[tr.dataset.operator] = {
          delegated: f("delegated"), active: f("active"), withdrawing: f("withdrawing"),
          free: f("free"), slashed: f("slashed"),
        };
      }
      const agents = [...document.querySelectorAll("#agents tbody tr")].map((tr) => ({
        agent: tr.dataset.agent,
        state: tr.querySelector("[data-field=state]").textContent,
        telemetry_age: tr.querySelector("[data-field=telemetry_age_ms]").textContent,
      }));
      const slashes = [...document.querySelectorAll("#slashes tbody tr")].map((tr) => ({
        task: tr.dataset.slashTask,
        slashed: tr.querySelector("[data-field=slashed]").textContent,
        reason: tr.querySelector("[data-field=reason]").textContent,
        when: tr.querySelector("[data-field=when]").textContent,
      }));
      return {
        state: document.body.dataset.state, operators, agents, slashes,
        status: document.getElementById("status").textContent,
        url_after: location.href, token_in_url: location.hash.includes("token"),
      };
    });
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    result.errors = errors;
    console.log(JSON.stringify(result));
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
