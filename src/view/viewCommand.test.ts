import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CliIo, EXIT_OK, EXIT_USAGE, main } from '../cli/commands.js';
import { MetricsCollector } from '../scenario/metrics.js';
import type { RunOptions, ScenarioRunner } from '../scenario/runnerApi.js';
import type { Scenario } from '../scenario/schema.js';
import { startViewServer } from './serve.js';
import { syntheticChromeTrace } from './syntheticTrace.js';
import { type ViewIo, viewCommand } from './viewCommand.js';

const dir = mkdtempSync(join(tmpdir(), 'irqfwd-view-'));

function io(): CliIo & ViewIo & { out: string; err: string; files: Map<string, string> } {
  const o = {
    out: '',
    err: '',
    files: new Map<string, string>(),
    stdout: (s: string) => {
      o.out += s;
    },
    stderr: (s: string) => {
      o.err += s;
    },
    stderrIsTTY: false,
    now: () => 0,
    readFile: (p: string) => readFileSync(p, 'utf8'),
    writeFile: (p: string, d: string) => {
      o.files.set(p, d);
    },
    exists: (p: string) => existsSync(p),
    tmpdir: () => '/tmp/test',
  };
  return o;
}

/** A runner whose traces are synthetic, so the CLI path is tested without running the model. */
function fakeRunner(): ScenarioRunner & { modes: string[][] } {
  const modes: string[][] = [];
  return {
    modes,
    run(s: Scenario, opts: RunOptions) {
      modes.push([...opts.modes]);
      return {
        runs: opts.modes.map((mode) => ({
          mode,
          metrics: new MetricsCollector(mode, s.host.hz, []).finish({
            simCycles: s.duration,
            hostCycles: 0,
            leftActive: 0,
            leftMasked: 0,
          }),
          violations: [],
          trace: {
            format: 'perfetto' as const,
            data: JSON.stringify(syntheticChromeTrace(mode === 'normal' ? 50 : 40)),
          },
        })),
      };
    },
  };
}

const embedded = (html: string): { itemStart: number[]; runs: { label: string }[] } =>
  JSON.parse(html.match(/<script type="application\/json" id="irqfwd-data">(.*?)<\/script>/s)![1]!);

describe('irqfwd view', () => {
  it('runs a scenario in both modes and writes one self-contained page with both runs', async () => {
    const c = io();
    const r = fakeRunner();
    const code = await main(['view', '-q', '-o', join(dir, 'p.html')], r, c);
    expect(code).toBe(EXIT_OK);
    expect(r.modes).toEqual([['normal', 'forwarded']]);
    const html = c.files.get(join(dir, 'p.html'))!;
    const data = embedded(html);
    expect(data.runs.map((x) => x.label)).toEqual(['normal', 'forwarded']);
    expect(data.itemStart).toHaveLength(90);
    expect(html).toContain("default-src 'none'");
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    expect(c.out).toMatch(/^irqfwd view: default: normal vs forwarded — 90 events in 12 lanes, written to /);
  });

  it('views a Chrome trace file as one run; --seed is refused for it (exit 2)', async () => {
    const file = join(dir, 't.json');
    writeFileSync(file, JSON.stringify(syntheticChromeTrace(30)));
    const c = io();
    expect(await main(['view', file], fakeRunner(), c)).toBe(EXIT_OK);
    expect(c.out).toContain('t.json — 30 events in 6 lanes, written to /tmp/test/irqfwd/t.json.view.html');
    const bad = io();
    expect(await main(['view', file, '--seed', '3'], fakeRunner(), bad)).toBe(EXIT_USAGE);
    expect(bad.err).toContain('--seed applies to scenarios, not to chrome files');
  });

  it('exits 2 on a broken trace, on -o with --serve and on --port without --serve', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{"traceEvents":[{"ph":"X"}]}');
    const c = io();
    expect(await main(['view', file], fakeRunner(), c)).toBe(EXIT_USAGE);
    expect(c.err).toContain('broken.json: traceEvents[0] has no name or ph');
    const d = io();
    expect(await main(['view', '--serve', '-o', 'x.html'], fakeRunner(), d)).toBe(EXIT_USAGE);
    expect(d.err).toContain('-o and --serve exclude each other');
    const e = io();
    expect(await main(['view', '--port', '80'], fakeRunner(), e)).toBe(EXIT_USAGE);
    expect(e.err).toContain('--port needs --serve');
    const f = io();
    expect(await main(['view', '--serve', '--port', 'http'], fakeRunner(), f)).toBe(EXIT_USAGE);
    expect(f.err).toContain("--port expects an integer 0..65535, got 'http'");
  });

  it('views a checker replay file with its steps and violation; it marks the steps `irqfwd check --replay` stars', async () => {
    const file = join(dir, 'cx.json');
    writeFileSync(
      file,
      JSON.stringify({
        format: 1,
        scenario: 'assign-race',
        variant: 'naive',
        seed: 1,
        options: { variant: 'naive', raises: 1, ops: ['assign', 'deassign'], seed: 1 },
        invariant: 'no-irq-left-active',
        schedule: [0, 0, 0, 0, 0, 0, 0, 0, 2],
      }),
    );
    const c = io();
    expect(await main(['view', file, '-o', join(dir, 'cx.html')], fakeRunner(), c)).toBe(EXIT_OK);
    const data = JSON.parse(c.files.get(join(dir, 'cx.html'))!.match(/id="irqfwd-data">(.*?)<\/script>/s)![1]!) as {
      checkSteps: { index: number; marked: boolean }[];
      violations: { invariant: string }[];
    };
    expect(data.checkSteps.length).toBeGreaterThan(8);
    expect(data.checkSteps.some((s) => s.marked)).toBe(true);
    expect(data.violations.map((v) => v.invariant)).toEqual(['no-irq-left-active']);
    // one definition (counterexampleTrace.ts markedSteps, spelled by stepMark): the CLI's `# step N*` are the page's
    const cli = io();
    await main(['check', '--replay', file], fakeRunner(), cli);
    const starred = [...cli.out.matchAll(/^# step (\d+)\* /gm)].map((m) => Number(m[1]));
    expect(starred.length).toBeGreaterThan(0);
    expect(data.checkSteps.filter((s) => s.marked).map((s) => s.index)).toEqual(starred);
  });

  it('--serve: serves the page on 127.0.0.1, 404 elsewhere, until stopped', async () => {
    const file = join(dir, 's.json');
    writeFileSync(file, JSON.stringify(syntheticChromeTrace(10)));
    const c = io();
    let got = '';
    const code = await viewCommand(
      file,
      {
        serve: true,
        scenarioOnly: [],
        untilStopped: async (srv) => {
          expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
          got = await (await fetch(srv.url)).text();
          expect((await fetch(`${srv.url}etc/passwd`)).status).toBe(404);
        },
      },
      c,
      () => Promise.reject(new Error('not a scenario')),
    );
    expect(code).toBe(0);
    expect(got).toContain('id="irqfwd-data"');
    expect(c.out).toMatch(/serving http:\/\/127\.0\.0\.1:\d+\/ \(127\.0\.0\.1 only/);
  });

  it('startViewServer binds the loopback address only', async () => {
    const srv = await startViewServer('<p>x</p>');
    const port = Number(new URL(srv.url).port);
    const status = await new Promise<number>((resolve) => {
      request({ host: '127.0.0.1', port, path: '/', method: 'HEAD' }, (res) => resolve(res.statusCode ?? 0)).end();
    });
    await srv.close();
    expect([port > 0, status]).toEqual([true, 200]);
  });
});
