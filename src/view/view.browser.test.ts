/**
 * The timeline page in a real browser: Debian's chromium driven by playwright-core. Skipped only where
 * /usr/bin/chromium does not exist and CI is not set; under CI a missing or broken browser fails the test.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_OK, main, nodeIo } from '../cli/commands.js';
import { runScenario } from '../scenario/runner.js';
import { costDefs } from '../sim/costs.js';
import type { ViewHook } from './client/hook.js';
import { buildViewPage } from './page.js';
import { syntheticChromeTrace } from './syntheticTrace.js';
import { buildTimeline } from './timelineModel.js';
import { viewOfReplayFile } from './viewInput.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM) || (process.env.CI ?? '') !== '';
const OUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'irqfwd-view-browser-'));

declare const window: { __irqfwdView: ViewHook };
declare const document: { getElementById(id: string): { textContent: string | null } | null };

async function open(browser: Browser, file: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(pathToFileURL(file).href);
  await page.waitForFunction(() => window.__irqfwdView?.ready === true, undefined, { timeout: 15_000 });
  expect(errors).toEqual([]);
  return page;
}

describe.skipIf(!available)('irqfwd view in chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('draws the default scenario: lanes of both runs, events, a tooltip with the fields on hover', async () => {
    const file = join(dir, 'default.html');
    const io = { ...nodeIo(), stdout: () => {}, stderr: () => {} };
    const runner = { run: runScenario, costNames: () => costDefs().map((d) => d.name) };
    expect(await main(['view', '-q', '-o', file], runner, io)).toBe(EXIT_OK);
    const page = await open(browser, file);

    const hook = await page.evaluate(() => {
      const h = window.__irqfwdView;
      return { lanes: h.lanes, kinds: h.laneKinds, items: h.items, chains: h.chains, drawn: h.drawn };
    });
    const labels = [
      'INTID 80 line (fff51000.ethernet)',
      'INTID 80 GIC state',
      'CPU 0',
      'CPU 1',
      'vCPU 0',
      'vCPU 0 LR0',
    ];
    for (const label of labels) expect(hook.lanes.filter((l) => l === label)).toHaveLength(2); // normal and forwarded
    expect(new Set(hook.kinds)).toEqual(new Set(['line', 'gic', 'cpu', 'vcpu', 'lr']));
    expect(await page.locator('.lane-label').count()).toBe(hook.lanes.length);
    expect(await page.locator('.run-label').allTextContents()).toEqual(['normal', 'forwarded']);
    expect(hook.items).toBeGreaterThan(10_000);
    expect(hook.chains).toBe(2000); // 1000 IRQs per run
    expect(hook.drawn).toBeGreaterThan(0);

    // zoom onto the first interrupt and hover its device_assert
    const i = await page.evaluate(() => window.__irqfwdView.findItem('device_assert'));
    expect(i).toBeGreaterThanOrEqual(0);
    const start = await page.evaluate(
      (k) =>
        (JSON.parse(document.getElementById('irqfwd-data')!.textContent!) as { itemStart: number[] }).itemStart[k]!,
      i,
    );
    await page.evaluate((t) => window.__irqfwdView.setView(t - 1000, t + 4000), start);
    const pos = await page.evaluate((k) => window.__irqfwdView.itemScreenPos(k), i);
    expect(pos).not.toBeNull();
    await page.mouse.move(pos!.x, pos!.y);
    const tip = page.locator('#tip');
    await expect.poll(() => tip.isVisible()).toBe(true);
    const text = await tip.textContent();
    expect(text).toContain('device_assert');
    expect(text).toContain('intid=80');
    expect(text).toContain('dev=fff51000.ethernet');

    // a click pins the fields and lists the interrupt's causal chain
    await page.mouse.down();
    await page.mouse.up();
    const chain = await page.locator('ol.chain li').allTextContents();
    expect(chain.length).toBeGreaterThanOrEqual(3);
    expect(chain[0]).toMatch(/^device_assert\s+\+0 ns/);

    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'view-default.png') });
    expect(readFileSync(join(OUT, 'view-default.png')).subarray(1, 4).toString()).toBe('PNG');
    await page.close();
  });

  it('opens a 100 000-event trace and draws it zoomed out and zoomed in', async () => {
    const file = join(dir, 'big.html');
    const data = buildTimeline('synthetic', [
      { label: 'synthetic', source: 'syntheticChromeTrace(100000)', trace: syntheticChromeTrace(100_000) },
    ]);
    writeFileSync(file, await buildViewPage(data));
    const page = await open(browser, file);
    const whole = await page.evaluate(() => ({ items: window.__irqfwdView.items, drawn: window.__irqfwdView.drawn }));
    expect(whole.items).toBe(100_000);
    expect(whole.drawn).toBeGreaterThan(0);
    // culling: the whole run paints far fewer rectangles than there are events
    expect(whole.drawn).toBeLessThan(100_000);
    const zoomed = await page.evaluate(() => {
      window.__irqfwdView.setView(10_000_000, 10_010_000);
      return window.__irqfwdView.drawn;
    });
    expect(zoomed).toBeGreaterThan(0);
    expect(zoomed).toBeLessThan(100);
    await page.close();
  });

  it('opens a checker counterexample on the steps that matter, listed and marked', async () => {
    const replay = JSON.stringify({
      format: 1,
      scenario: 'assign-race',
      variant: 'naive',
      seed: 1,
      options: { variant: 'naive', raises: 1, ops: ['assign', 'deassign'], seed: 1 },
      invariant: 'no-irq-left-active',
      schedule: [0, 0, 0, 0, 0, 0, 0, 0, 2],
    });
    const src = viewOfReplayFile('cx.json', replay);
    const file = join(dir, 'cx.html');
    writeFileSync(file, await buildViewPage(buildTimeline(src.title, src.runs)));
    const page = await open(browser, file);
    const marked = await page.evaluate(() => window.__irqfwdView.markedSteps);
    expect(marked).toBeGreaterThan(0);
    expect(await page.locator('ol.step-list li.marked').count()).toBe(marked);
    expect(await page.locator('#banner .violation').textContent()).toContain('no-irq-left-active');
    await page.screenshot({ path: join(OUT, 'view-counterexample.png') });
    await page.close();
  });
});
