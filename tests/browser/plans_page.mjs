// Drives the scheduler's /plans page in headless Chromium (Debian's, through
// playwright-core): screenshots it, clicks the retry button of one plan, answers the
// token prompt, waits for the scheduler's answer on the page, screenshots again and
// prints what the page said as JSON. Used by bins/scheduler/tests/control_plane.rs.
//
// usage: node plans_page.mjs <page url> <plan> <token> <output dir>
import { createRequire } from 'node:module';
import path from 'node:path';

const [url, plan, token, outDir] = process.argv.slice(2);
const tools = process.env.BLOCKSCONVERT_TEST_TOOLS;
if (!url || !plan || !token || !outDir || !tools) {
  console.error('usage: BLOCKSCONVERT_TEST_TOOLS=… node plans_page.mjs <url> <plan> <token> <dir>');
  process.exit(2);
}
const require = createRequire(path.join(tools, 'playwright', 'package.json'));
const { chromium } = require('playwright-core');

const browser = await chromium.launch({
  executablePath: process.env.BLOCKSCONVERT_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // The machine has no network beyond localhost: keep Chromium from calling home.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const result = { dialogs: [] };
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  page.on('dialog', async (d) => {
    result.dialogs.push({ type: d.type(), message: d.message() });
    await (d.type() === 'prompt' ? d.accept(token) : d.accept());
  });
  await page.goto(url);
  await page.screenshot({ path: path.join(outDir, 'plans-before.png'), fullPage: true });
  const button = page.locator(`button[data-action="retry"][data-plan="${plan}"]`);
  result.buttonText = await button.innerText();
  await button.click();
  const answer = page.locator('#admin-result');
  await answer.filter({ hasText: /\S/ }).waitFor();
  result.answer = await answer.innerText();
  result.answerClass = await answer.getAttribute('class');
  await page.screenshot({ path: path.join(outDir, 'plans-after.png'), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
