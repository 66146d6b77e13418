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
import { tracedVgicV4 } from '../../test/fixtures/vgicV4Trace.js';
import { replayToText } from '../check/counterexampleTrace.js';
import { parseReplayFile } from '../check/replay.js';
import { EXIT_OK, main, nodeIo } from '../cli/commands.js';
import { runScenario } from '../scenario/runner.js';
import { costDefs } from '../sim/costs.js';
import { writeChromeJson } from '../trace/chromeJsonWriter.js';
import type { ChromeTrace } from './chromeTrace.js';
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

interface Frame {
  drawn: number;
  densityLanes: number;
  buckets: number;
  boxes: number[][];
  texts: string[];
}

const frame = (page: Page): Promise<Frame> =>
  page.evaluate(() => {
    const h = window.__irqfwdView;
    return {
      drawn: h.drawn,
      densityLanes: h.densityLanes,
      buckets: h.buckets,
      boxes: h.labelBoxes,
      texts: h.labelTexts,
    };
  });

/** Pairs of label boxes that overlap (the page places every label so that there are none). */
function overlapping(boxes: number[][]): string[] {
  const out: string[] = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const [ax, ay, aw, ah] = boxes[i]!;
      const [bx, by, bw, bh] = boxes[j]!;
      if (ax! < bx! + bw! && bx! < ax! + aw! && ay! < by! + bh! && by! < ay! + ah!) out.push(`${i}/${j}`);
    }
  return out;
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  await page.screenshot({ path: join(OUT, name) });
  expect(readFileSync(join(OUT, name)).subarray(1, 4).toString()).toBe('PNG');
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
    await page.close();
  });

  it('reads at three zoom levels: density zoomed out, bars zoomed in, labels never overlapping, runs aligned on their first IRQ', async () => {
    const file = join(dir, 'default.html');
    const page = await open(browser, file);
    await page.waitForFunction(() => window.__irqfwdView.latencyReady);
    const info = await page.evaluate(() => {
      const d = JSON.parse(document.getElementById('irqfwd-data')!.textContent!) as {
        names: string[];
        itemName: number[];
        itemStart: number[];
        itemLane: number[];
        lanes: { run: number }[];
      };
      const assert = d.names.indexOf('device_assert');
      const first = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
      d.itemName.forEach((n, i) => {
        const r = d.lanes[d.itemLane[i]!]!.run;
        if (n === assert) first[r] = Math.min(first[r]!, d.itemStart[i]!);
      });
      const h = window.__irqfwdView;
      return { first, lanes: h.lanes, irqs: h.irqs, histogram: h.histogram };
    });
    // both runs' first IRQs at time 0 of the shared axis
    expect(info.first).toEqual([0, 0]);
    // the SGI's lane says what it is
    expect(info.lanes.filter((l) => l.startsWith('INTID 0 (SGI: IPI)'))).toHaveLength(2);
    // the histograms beside the lanes: each run's bins add up to its IRQ count
    expect(info.irqs).toEqual([1000, 1000]);
    for (const r of [0, 1]) expect(info.histogram.total[r]!.reduce((a, b) => a + b, 0)).toBe(info.irqs[r]);
    expect(await page.locator('.latency canvas').count()).toBe(3); // stacked stages and two histograms

    // 1. the whole run: lanes of thousands of events are density buckets, not per-event bars
    await page.evaluate(() => window.__irqfwdView.showAll());
    const whole = await frame(page);
    expect(whole.densityLanes).toBeGreaterThanOrEqual(10);
    expect(whole.buckets).toBeGreaterThan(1000);
    expect(whole.drawn).toBeLessThan(50);
    expect(overlapping(whole.boxes)).toEqual([]);
    await shot(page, 'view-default-1-whole.png');

    // 2. 40 IRQs: the line, GIC, vCPU and LR lanes are one bar per event again; only the host CPU that runs the
    // vCPU, with a dozen events per IRQ, is still denser than one event per 4 px
    await page.evaluate(() => window.__irqfwdView.setView(-5000, 400_000));
    const mid = await frame(page);
    expect(mid.densityLanes).toBe(2);
    expect(mid.drawn).toBeGreaterThan(500);
    expect(overlapping(mid.boxes)).toEqual([]);
    await shot(page, 'view-default-2-irqs.png');

    // 3. the first IRQ of both runs, its chain selected: labelled events, none overlapping another label
    await page.evaluate(() => window.__irqfwdView.setView(-1000, 6000));
    const i = await page.evaluate(() => window.__irqfwdView.findItem('device_assert'));
    const pos = await page.evaluate((k) => window.__irqfwdView.itemScreenPos(k), i);
    await page.mouse.click(pos!.x, pos!.y);
    await expect.poll(async () => (await frame(page)).texts.some((t) => t === '1 device_assert')).toBe(true);
    const near = await frame(page);
    expect(near.densityLanes).toBe(0);
    expect(near.texts).toContain('line high');
    expect(overlapping(near.boxes)).toEqual([]);
    expect(await page.locator('.latency h2').first().textContent()).toContain('seq 1');
    await page.mouse.move(5, 5); // off the canvas: the hover tooltip goes
    await shot(page, 'view-default-3-first-irq.png');
    await page.close();
  });

  it('shows the GICv4.1 lanes: ITS, doorbells, and under vCPU 0 its vPE residency with the direct vLPIs', async () => {
    // test/e2e/vgicV4.test.ts's machine traced: an MSI to the resident vCPU, then one to the vCPU in WFI (doorbell)
    const t = tracedVgicV4();
    const trace = JSON.parse(writeChromeJson(t.tracer, { hz: t.hz, cpus: t.cpus })) as ChromeTrace;
    const file = join(dir, 'vgic-v4.html');
    writeFileSync(
      file,
      await buildViewPage(buildTimeline('GICv4.1', [{ label: 'vlpi-v41', source: 'vgicV4', trace }])),
    );
    const page = await open(browser, file);
    const hook = await page.evaluate(() => ({
      lanes: window.__irqfwdView.lanes,
      kinds: window.__irqfwdView.laneKinds,
    }));
    expect(hook.lanes).toEqual(expect.arrayContaining(['ITS', 'vPE doorbells', 'vCPU 0', 'vCPU 0 vPE']));
    expect(hook.lanes.indexOf('vCPU 0 vPE')).toBe(hook.lanes.indexOf('vCPU 0') + 1);
    expect(new Set(hook.kinds)).toEqual(new Set(['its', 'gic', 'doorbell', 'cpu', 'vcpu', 'vpe']));
    expect(await page.locator('.legend-label').allTextContents()).toEqual(
      expect.arrayContaining(['vPE resident', 'direct vLPI', 'doorbell']),
    );

    // the whole run: the residency band and the events drawn, no label over another
    await page.evaluate(() => window.__irqfwdView.showAll());
    const whole = await frame(page);
    expect(whole.drawn).toBeGreaterThan(0);
    expect(overlapping(whole.boxes)).toEqual([]);
    await shot(page, 'view-vgic-v4-1-whole.png');

    // around the doorbell: hover each new kind of item and read its fields
    const at = (name: string, nth = 0): Promise<{ i: number; start: number }> =>
      page.evaluate(
        ([n, k]) => {
          const i = window.__irqfwdView.findItem(n as string, k as number);
          const d = JSON.parse(document.getElementById('irqfwd-data')!.textContent!) as { itemStart: number[] };
          return { i, start: d.itemStart[i]! };
        },
        [name, nth],
      );
    const db = await at('gic_vpe_doorbell');
    expect(db.i).toBeGreaterThanOrEqual(0);
    await page.evaluate((s) => window.__irqfwdView.setView(s - 500, s + 2500), db.start);
    const near = await frame(page);
    expect(near.densityLanes).toBe(0);
    expect(overlapping(near.boxes)).toEqual([]);
    const tip = page.locator('#tip');
    const hover = async (i: number): Promise<string> => {
      const pos = await page.evaluate((k) => window.__irqfwdView.itemScreenPos(k), i);
      expect(pos).not.toBeNull();
      await page.mouse.move(pos!.x, pos!.y);
      await expect.poll(() => tip.isVisible()).toBe(true);
      return (await tip.textContent()) ?? '';
    };
    const dbText = await hover(db.i);
    expect(dbText).toContain('gic_vpe_doorbell');
    expect(dbText).toContain('vintid=8192');
    const iar = await at('gic_vlpi_iar', 1); // the doorbell's vLPI, taken once vgic_v4_load made the vPE resident
    expect(iar.start).toBeGreaterThan(db.start);
    expect(await hover(iar.i)).toContain('gic_vlpi_iar');
    await shot(page, 'view-vgic-v4-2-doorbell.png');
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
    // zoomed out, every lane is density: no per-event bar at all
    expect(whole.drawn).toBe(0);
    expect(await page.evaluate(() => window.__irqfwdView.densityLanes)).toBe(5); // all but the idle CPU 0
    const zoomed = await page.evaluate(() => {
      window.__irqfwdView.setView(10_000_000, 10_010_000);
      if (window.__irqfwdView.densityLanes !== 0) return -1;
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
    const marked = await page.evaluate(() => window.__irqfwdView.markedStepIndices);
    expect(marked.length).toBeGreaterThan(0);
    // the page's marks are the CLI's: `irqfwd check --replay` prints `# step N*` for exactly these steps
    const starred = [...replayToText(parseReplayFile(replay)).matchAll(/^# step (\d+)\* /gm)].map((m) => Number(m[1]));
    expect(marked).toEqual(starred);
    const listed = await page.locator('ol.step-list li.marked').allTextContents();
    expect(listed.map((t) => t.split(' ')[1])).toEqual(starred.map((n) => `${n}*`));
    expect(await page.locator('#banner .violation').textContent()).toContain('no-irq-left-active');

    // 2. as it opens: on the steps that matter, each labelled on the timeline as the CLI names it
    const opened = await frame(page);
    for (const n of starred) expect(opened.texts).toContain(`step ${n}*`);
    expect(overlapping(opened.boxes)).toEqual([]);
    await shot(page, 'view-counterexample-2-open.png');

    // 1. the whole replay: few events, so bars, not density; the vCPU keeps its lane though it took no IRQ
    await page.evaluate(() => window.__irqfwdView.showAll());
    const whole = await frame(page);
    expect(whole.densityLanes).toBe(0);
    expect(whole.drawn).toBeGreaterThan(0);
    expect(overlapping(whole.boxes)).toEqual([]);
    expect(await page.evaluate(() => window.__irqfwdView.lanes)).toContain('vCPU 0');
    await shot(page, 'view-counterexample-1-whole.png');

    // 3. close on the first step that matters, picked in the list
    await page.locator('ol.step-list li.marked').first().click();
    await page.evaluate((k) => {
      const d = JSON.parse(document.getElementById('irqfwd-data')!.textContent!) as {
        itemStart: number[];
        checkSteps: { index: number; item: number }[];
      };
      const t = d.itemStart[d.checkSteps.find((s) => s.index === k)!.item]!;
      window.__irqfwdView.setView(t - 300, t + 700);
    }, starred[0]!);
    const near = await frame(page);
    expect(near.texts).toContain(`step ${starred[0]}*`);
    expect(overlapping(near.boxes)).toEqual([]);
    expect(await page.locator('#details pre.fields').textContent()).toContain('check_step');
    await shot(page, 'view-counterexample-3-step.png');
    await page.close();
  });
});
