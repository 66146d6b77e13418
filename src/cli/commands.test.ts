import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsCollector } from '../scenario/metrics.js';
import type { InvariantViolation, RunOptions, RunResult, ScenarioRunner } from '../scenario/runnerApi.js';
import type { Mode, Scenario } from '../scenario/schema.js';
import { ModelError } from '../sim/errors.js';
import {
  type CliIo,
  EXIT_FAIL,
  EXIT_INCONCLUSIVE,
  EXIT_INTERNAL,
  EXIT_OK,
  EXIT_USAGE,
  main,
  nodeIo,
} from './commands.js';

interface Captured extends CliIo {
  out: string;
  err: string;
  files: Map<string, string>;
  setTTY(v: boolean): void;
}

function captureIo(opts: { tty?: boolean; clockStep?: number } = {}): Captured {
  let t = 0;
  let tty = opts.tty ?? false;
  const io: Captured = {
    out: '',
    err: '',
    files: new Map(),
    setTTY: (v) => {
      tty = v;
    },
    stdout: (s) => {
      io.out += s;
    },
    stderr: (s) => {
      io.err += s;
    },
    get stderrIsTTY() {
      return tty;
    },
    columns: 80,
    now: () => {
      t += opts.clockStep ?? 0;
      return t;
    },
    readFile: (p) => readFileSync(p, 'utf8'),
    writeFile: (p, d) => {
      io.files.set(p, d);
    },
    exists: (p) => existsSync(p),
    tmpdir: () => '/tmp/test',
  };
  return io;
}

interface FakeBehaviour {
  lost?: number;
  violations?: InvariantViolation[];
  probe?: number;
  throws?: unknown;
  progress?: number[];
}

function fakeRunner(b: FakeBehaviour = {}): ScenarioRunner & { calls: { s: Scenario; opts: RunOptions }[] } {
  const calls: { s: Scenario; opts: RunOptions }[] = [];
  return {
    calls,
    costNames: () => ['gicd_write', 'gicd_read', 'vgic_sync_hwstate'],
    run(s: Scenario, opts: RunOptions): RunResult {
      calls.push({ s, opts });
      if (b.throws !== undefined) throw b.throws;
      for (const p of b.progress ?? []) opts.onProgress?.(p);
      const runs = opts.modes.map((mode: Mode) => {
        const c = new MetricsCollector(mode, s.host.hz, [{ device: 'd', index: 0, intid: 80 }]);
        for (let i = 0; i < 10; i++) {
          c.raised(0);
          if (i >= (b.lost ?? 0)) c.delivered(0, 5000);
          if (!s.devices.some((d) => d.bus === 'pci')) c.exit('irq'); // a direct vLPI takes no exit
          if (mode === 'normal') c.exit('maintenance');
        }
        if (b.probe !== undefined) c.probe('hypercall', b.probe);
        return {
          mode,
          metrics: c.finish({
            simCycles: s.duration,
            hostCycles: mode === 'normal' ? 150_000 : 70_000,
            hostByCpu: [0, mode === 'normal' ? 150_000 : 70_000],
            windowCycles: s.duration,
            leftActive: 0,
            leftMasked: 0,
          }),
          violations: b.violations ?? [],
          ...(opts.trace ? { trace: { format: opts.trace, data: `trace of ${mode}\n` } } : {}),
        };
      });
      return { runs, notes: ['a note'] };
    },
  };
}

async function cli(args: string[], runner = fakeRunner(), io = captureIo()) {
  const code = await main(args, runner, io);
  return { code, out: io.out, err: io.err, files: io.files, runner };
}

function tempScenario(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'irqfwd-cli-'));
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, text);
  return f;
}

describe('irqfwd help and arguments', () => {
  it('help and no arguments print usage and exit 0', async () => {
    for (const args of [[], ['help'], ['--help'], ['run', '-h']]) {
      const r = await cli(args);
      expect(r.code).toBe(EXIT_OK);
      expect(r.out).toContain('Usage:');
      expect(r.out).toContain('irqfwd compare [scenario]');
    }
  });

  it('help costs lists profiles and costs; help metrics lists metric paths', async () => {
    const c = await cli(['help', 'costs']);
    expect(c.out).toContain('xgene');
    expect(c.out).toMatch(/vgic_sync_hwstate\s+.*3,250\s+2,700/);
    expect(c.out).toContain('kvm_entry (not defined by the model yet)'); // the fake runner knows 3 names
    expect((await cli(['help', 'metrics'])).out).toContain('exits.perIrq.total');
  });

  it.each([
    [['frob'], "unknown command 'frob'"],
    [['run', '--frob'], "Unknown option '--frob'"],
    [['run', '--seed', 'abc'], "--seed expects an integer 0..4294967295, got 'abc'"],
    [['run', '--profile', 'm1'], "--profile expects one of default, xgene, a15, got 'm1'"],
    [['run', '--format', 'text'], "option --format does not apply to 'run'"],
    [['trace', '--format', 'svg'], "--format expects text, report or perfetto, got 'svg'"],
    [['run', 'a', 'b'], "'run' takes at most one argument (a scenario), got: a b"],
    [['schema', 'x'], "'schema' takes no argument"],
    [['run', '--trace', 'x.json', '--no-trace'], 'contradict'],
    [['trace', '--json'], 'trace --json needs -o FILE'],
  ])('%j exits 2: %s', async (args, msg) => {
    const r = await cli(args);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toContain(msg);
    expect(r.out).toBe('');
  });
});

describe('irqfwd run / compare', () => {
  it('run with no scenario runs the embedded default on both paths and prints the compare table', async () => {
    const r = await cli(['run']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.runner.calls).toHaveLength(1);
    expect(r.runner.calls[0]!.s.name).toBe('default');
    expect(r.runner.calls[0]!.opts.modes).toEqual(['normal', 'forwarded']);
    expect(r.runner.calls[0]!.opts.trace).toBe('perfetto');
    expect(r.out).toContain('irqfwd run: default (<default scenario>) — profile xgene, 2.4 GHz, seed 1, 11 ms');
    expect(r.out).toMatch(/exits per IRQ\s+2\.00\s+1\.00\s+0\.50×/);
    expect(r.out).toMatch(/host cycles per IRQ\s+15,000\s+7,000\s+0\.47×/);
    expect(r.out).toContain('checks: ok');
    expect(r.out).toContain(
      'trace: /tmp/test/irqfwd/default.normal.perfetto.json, /tmp/test/irqfwd/default.forwarded.perfetto.json',
    );
    expect(r.files.get('/tmp/test/irqfwd/default.forwarded.perfetto.json')).toBe('trace of forwarded\n');
    expect(r.out).toContain('note: a note');
  });

  it('--json prints the documented shape', async () => {
    const r = await cli(['run', '--json', '--no-trace']);
    expect(r.code).toBe(EXIT_OK);
    const j = JSON.parse(r.out);
    expect(Object.keys(j)).toEqual(['irqfwd', 'command', 'scenario', 'runs', 'notes', 'ok', 'exitCode']);
    expect(j).toMatchObject({
      irqfwd: 1,
      command: 'run',
      scenario: {
        name: 'default',
        file: '<default scenario>',
        seed: 1,
        profile: 'xgene',
        hz: 2.4e9,
        modes: ['normal', 'forwarded'],
      },
      ok: true,
      exitCode: 0,
    });
    expect(j.runs.map((x: { mode: string }) => x.mode)).toEqual(['normal', 'forwarded']);
    expect(Object.keys(j.runs[0])).toEqual(['mode', 'ok', 'metrics', 'violations', 'expectations', 'trace']);
    expect(j.runs[0].metrics.exits.perIrq.total).toBe(2);
    expect(j.runs[1].metrics.exits.byReason.maintenance).toBe(0);
    expect(j.runs[0].trace).toBeNull();
    expect(r.runner.calls[0]!.opts.trace).toBeUndefined();
  });

  it('stdout is identical across two runs (deterministic output)', async () => {
    const a = await cli(['run', '--no-trace']);
    const b = await cli(['run', '--no-trace']);
    expect(a.out).toBe(b.out);
  });

  it('a lost IRQ exits 1 and says so', async () => {
    const r = await cli(['run', '--no-trace'], fakeRunner({ lost: 2 }));
    expect(r.code).toBe(EXIT_FAIL);
    expect(r.out).toContain('✗ normal: no-lost-irq: 2 IRQ(s) raised but never delivered to the guest');
    expect(r.out).toContain('checks: FAILED in 2 of 2 run(s)');
  });

  it("a runner's invariant violation exits 1 and shows in JSON", async () => {
    const v = { invariant: 'refs-dropped', message: 'vfio_device fff51000.ethernet: 1 reference left' };
    const r = await cli(['run', '--json', '--no-trace'], fakeRunner({ violations: [v] }));
    expect(r.code).toBe(EXIT_FAIL);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(false);
    expect(j.exitCode).toBe(1);
    expect(j.runs[1].violations).toEqual([v]);
  });

  it('a malformed scenario exits 2 naming the file, line and field', async () => {
    const f = tempScenario('name: bad\nvms:\n  - guest:\n      eoiMode: 3\n');
    const r = await cli(['run', f]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toBe(`${f}:4:16: vms[0].guest.eoiMode: expected 0 or 1 (GICV_CTLR.EOImode), got 3\n`);
    expect(r.runner.calls).toHaveLength(0);
  });

  it('an unknown cost override exits 2 with a suggestion', async () => {
    const f = tempScenario('host:\n  costs: { gicd_writ: 5 }\n');
    const r = await cli(['run', f]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toContain("host.costs.gicd_writ: unknown cost 'gicd_writ' (did you mean 'gicd_write'?)");
  });

  it('a missing scenario file exits 2', async () => {
    const r = await cli(['run', 'no-such-scenario']);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toContain('no-such-scenario: cannot read: no such file');
  });

  it('a shipped scenario can be named without its path; --seed and --profile override', async () => {
    const r = await cli(['run', 'edge', '--seed', '42', '--profile', 'a15', '--no-trace']);
    expect(r.code).toBe(EXIT_OK);
    const s = r.runner.calls[0]!.s;
    expect(s.name).toBe('edge');
    expect(s.seed).toBe(42);
    expect(s.host.costProfile).toBe('a15');
    expect(s.host.hz).toBe(1.7e9);
    expect(s.duration).toBe(11 * 1.7e6);
  });

  it('compare runs both modes even for a single-mode scenario', async () => {
    const r = await cli(['compare', 'hypercall', '--no-trace']);
    expect(r.runner.calls[0]!.opts.modes).toEqual(['normal', 'forwarded']);
    expect(r.out).toContain('irqfwd compare: hypercall');
  });

  it('compare on a scenario with paths runs each path in its mode, one column each (compare-paths)', async () => {
    const r = await cli(['compare', 'compare-paths', '--trace', 'out/t.json']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.runner.calls.map((c) => [c.opts.modes, c.s.host.gic.version, c.s.paths])).toEqual([
      [['normal'], 'v2', undefined],
      [['forwarded'], 'v2', undefined],
      [['forwarded'], 'v3', undefined],
      [['forwarded'], 'v3', undefined],
    ]);
    expect(r.out).toMatch(/^\s+irqfd-v2\s+hwbit-v2\s+hwbit-v3\s+vlpi-v41$/m);
    expect(r.out).toContain('✓ hwbit-v3: exits.perIrq.total = 1.00, expected 1');
    expect(r.out).toContain('✓ vlpi-v41: exits.perIrq.total = 0.00, expected 0');
    expect(r.out).not.toContain('✓ hwbit-v2: exits.perIrq.total');
    expect([...r.files.keys()]).toEqual([
      'out/t.irqfd-v2.json',
      'out/t.hwbit-v2.json',
      'out/t.hwbit-v3.json',
      'out/t.vlpi-v41.json',
    ]);
    const j = JSON.parse((await cli(['run', 'compare-paths', '--json', '--no-trace'])).out);
    expect(j.scenario.paths.map((p: { name: string; mode: string }) => `${p.name}:${p.mode}`)).toEqual([
      'irqfd-v2:normal',
      'hwbit-v2:forwarded',
      'hwbit-v3:forwarded',
      'vlpi-v41:forwarded',
    ]);
    expect(j.scenario.paths[2].set).toEqual({ 'host.gic.version': 'v3' });
    expect(j.runs.map((x: { path: string; mode: string }) => `${x.path}:${x.mode}`)).toEqual([
      'irqfd-v2:normal',
      'hwbit-v2:forwarded',
      'hwbit-v3:forwarded',
      'vlpi-v41:forwarded',
    ]);
  });

  it('trace --path traces one compare path; a paths scenario without it, or an unknown path, is a usage error', async () => {
    const r = await cli(['trace', 'compare-paths', '--path', 'hwbit-v3']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.runner.calls[0]!.opts.modes).toEqual(['forwarded']);
    expect(r.runner.calls[0]!.s.host.gic.version).toBe('v3');
    expect(r.out).toBe('trace of forwarded\n');
    for (const [args, msg] of [
      [
        ['trace', 'compare-paths'],
        'has compare paths (irqfd-v2, hwbit-v2, hwbit-v3, vlpi-v41): trace one with --path NAME',
      ],
      [['trace', 'compare-paths', '--path', 'v4'], "--path v4: '"],
      [['trace', 'default', '--path', 'hwbit-v2'], 'has no compare paths'],
      [['trace', 'compare-paths', '--path', 'irqfd-v2', '--mode', 'forwarded'], "runs mode 'normal' only"],
      [['run', '--path', 'x'], "option --path does not apply to 'run'"],
    ] as const) {
      const bad = await cli([...args]);
      expect(bad.code).toBe(EXIT_USAGE);
      expect(bad.err).toContain(msg);
    }
  });

  it('--trace FILE inserts the mode before the extension', async () => {
    const r = await cli(['run', '--trace', 'out/t.txt']);
    expect(r.runner.calls[0]!.opts.trace).toBe('text');
    expect([...r.files.keys()]).toEqual(['out/t.normal.txt', 'out/t.forwarded.txt']);
  });

  it('expectations against the profile anchors decide the exit code', async () => {
    const good = await cli(['run', 'hypercall', '--no-trace'], fakeRunner({ probe: 6600 }));
    expect(good.code).toBe(EXIT_OK);
    expect(good.out).toMatch(/✓ normal: probes\.hypercall\.cycles\.mean = 6,600(\.00)?, expected 6,500 ±10 %/);
    const bad = await cli(['run', 'hypercall', '--no-trace'], fakeRunner({ probe: 9000 }));
    expect(bad.code).toBe(EXIT_FAIL);
    expect(bad.out).toContain('✗ normal: probes.hypercall.cycles.mean');
    const none = await cli(['run', 'hypercall', '--no-trace'], fakeRunner());
    expect(none.code).toBe(EXIT_OK);
    expect(none.out).toContain('skipped (no samples in this run)');
  });

  it('a sweep runs each value and prints one row per value', async () => {
    const r = await cli(['run', 'rate-sweep']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.runner.calls).toHaveLength(6);
    expect(
      r.runner.calls.map((c) => {
        const w = c.s.workloads[0]!;
        return w.kind === 'periodic' ? w.period : 0;
      }),
    ).toEqual([240_000, 120_000, 48_000, 24_000, 12_000, 4_800]);
    expect(r.files.size).toBe(0);
    const rows = r.out.split('\n').filter((l) => /^\d+us\s/.test(l));
    expect(rows).toHaveLength(6);
    const j = JSON.parse((await cli(['run', 'rate-sweep', '--json'])).out);
    expect(j.sweep.param).toBe('workloads[0].period');
    expect(j.sweep.points.map((p: { value: string }) => p.value)).toEqual([
      '100us',
      '50us',
      '20us',
      '10us',
      '5us',
      '2us',
    ]);
    expect(j.sweep.points[0].runs).toHaveLength(2);
  });

  it('a ModelError from the runner exits 1; an unexpected exception exits 3', async () => {
    const m = await cli(['run', '--no-trace'], fakeRunner({ throws: new ModelError('irq 80 disable depth -1') }));
    expect(m.code).toBe(EXIT_FAIL);
    expect(m.err).toContain('the model detected a broken invariant: irq 80 disable depth -1');
    const t = await cli(['run', '--no-trace'], fakeRunner({ throws: new TypeError('oops') }));
    expect(t.code).toBe(EXIT_INTERNAL);
    expect(t.err).toContain('internal error: TypeError: oops');
  });
});

describe('irqfwd trace and schema', () => {
  it('trace writes the forwarded run to stdout by default, text format', async () => {
    const r = await cli(['trace']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toBe('trace of forwarded\n');
    expect(r.runner.calls[0]!.opts).toMatchObject({ modes: ['forwarded'], trace: 'text' });
  });

  it('trace -o FILE --format perfetto --mode normal writes the file and a summary', async () => {
    const r = await cli(['trace', 'edge', '--format', 'perfetto', '--mode', 'normal', '-o', 'x.json']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.runner.calls[0]!.opts).toMatchObject({ modes: ['normal'], trace: 'perfetto' });
    expect(r.files.get('x.json')).toBe('trace of normal\n');
    expect(r.out).toContain('irqfwd trace: edge (normal) — perfetto trace, 16 bytes, written to x.json');
  });

  it('trace --format report asks the runner for the trace-cmd report layout', async () => {
    const r = await cli(['trace', '--format', 'report']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.runner.calls[0]!.opts).toMatchObject({ modes: ['forwarded'], trace: 'report' });
  });

  it('trace --mode refuses a mode the scenario does not run', async () => {
    const r = await cli(['trace', 'teardown-inflight', '--mode', 'normal']);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toContain("the scenario runs mode 'forwarded' only");
  });

  it('schema prints the JSON Schema', async () => {
    const r = await cli(['schema']);
    expect(r.code).toBe(EXIT_OK);
    const j = JSON.parse(r.out);
    expect(j.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(j.title).toBe('irqfwd scenario');
    expect(j.properties.vms).toBeDefined();
  });
});

describe('progress bar', () => {
  it('draws on a TTY after a second, and erases itself', async () => {
    const io = captureIo({ tty: true, clockStep: 600 });
    const r = await cli(['run', '--no-trace'], fakeRunner({ progress: [0.1, 0.5, 0.9] }), io);
    expect(r.code).toBe(EXIT_OK);
    expect(io.err).toContain('%');
    expect(io.err).toMatch(/\[#+\.+\]\s+50%/);
    expect(io.err.endsWith('\r\x1b[K')).toBe(true);
    expect(io.out).not.toContain('%]');
  });

  it('is hidden with --quiet and when stderr is not a TTY', async () => {
    const quiet = captureIo({ tty: true, clockStep: 600 });
    await cli(['run', '--no-trace', '--quiet'], fakeRunner({ progress: [0.5] }), quiet);
    expect(quiet.err).toBe('');
    const pipe = captureIo({ tty: false, clockStep: 600 });
    await cli(['run', '--no-trace'], fakeRunner({ progress: [0.5] }), pipe);
    expect(pipe.err).toBe('');
  });

  it('is not drawn for a run shorter than a second', async () => {
    const io = captureIo({ tty: true, clockStep: 1 });
    await cli(['run', '--no-trace'], fakeRunner({ progress: [0.5] }), io);
    expect(io.err).toBe('');
  });
});

describe('unix habits (issue #15)', () => {
  it('the unknown-command message lists every command, check included', async () => {
    const r = await cli(['frob']);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toContain('(commands: run, compare, trace, view, schema, check, help)');
  });

  it('a .json scenario with a syntax error is reported as JSON, at its line and column', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'irqfwd-cli-'));
    const f = join(dir, 's.json');
    writeFileSync(f, '{"devices": [\n  {"name": "x",, }\n]}');
    const r = await cli(['run', f]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err).toBe(`${f}:2:16: JSON: Expected double-quoted property name\n`);
  });

  it("zod's messages come out in the project's voice (file:line:col: path: expected …)", async () => {
    const f = tempScenario('seed: -1\nmode: fast\nhost: { gic: { nrLrs: 0.5 } }\nteardown: 3\n');
    const r = await cli(['run', f]);
    expect(r.code).toBe(EXIT_USAGE);
    expect(r.err.split('\n').slice(0, 4)).toEqual([
      `${f}:1:7: seed: expected a number at least 0, got -1`,
      `${f}:2:7: mode: expected one of normal | forwarded | both, got "fast"`,
      `${f}:3:23: host.gic.nrLrs: expected an integer, got 0.5`,
      `${f}:4:11: teardown: expected true or false, got 3`,
    ]);
    expect(r.err).not.toMatch(/Too small|Invalid option|Invalid input|received/);
  });

  it('a scenario that would take hours says so on stderr before it starts, and still runs', async () => {
    const f = tempScenario(
      'duration: 10s\ndevices: [{ name: d, iommuGroup: 1, irqs: [{ intid: 80 }] }]\n' +
        'workloads: [{ device: d, kind: periodic, period: 10us }]\n',
    );
    const r = await cli(['run', f, '--no-trace']);
    expect(r.code).toBe(EXIT_OK);
    // 1,000,001 IRQs × 2 modes × 0.25 ms (estimate.ts) ≈ 8.3 min: under the threshold untraced …
    expect(r.err).toBe('');
    const t = await cli(['trace', f]);
    // … 1,000,001 × 0.56 ms ≈ 9.3 min for one mode traced: still under; 100 s of it is not
    expect(t.err).toBe('');
    const long = tempScenario(
      'duration: 100s\ndevices: [{ name: d, iommuGroup: 1, irqs: [{ intid: 80 }] }]\n' +
        'workloads: [{ device: d, kind: periodic, period: 10us }]\n',
    );
    const l = await cli(['run', long, '--no-trace']);
    expect(l.code).toBe(EXIT_OK);
    expect(l.runner.calls.length).toBe(1);
    expect(l.err).toMatch(/^irqfwd: warning: this run will take about 83 min of wall time .*Ctrl-C stops it\n$/);
  });

  it('a busy --port is a one-line error, exit 2', async () => {
    const { createServer } = await import('node:net');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const fake = fakeRunner();
      // the page needs Chrome JSON traces
      const runner = {
        ...fake,
        run: async (sc: Scenario, o: RunOptions): Promise<RunResult> => {
          const res = await fake.run(sc, o);
          return {
            runs: res.runs.map((x) => ({ ...x, trace: { format: 'perfetto' as const, data: '{"traceEvents":[]}' } })),
          };
        },
      };
      const r = await cli(['view', '--serve', '--port', String(port), '-q'], runner);
      expect(r.code).toBe(EXIT_USAGE);
      expect(r.err).toBe(`irqfwd: --port ${port}: 127.0.0.1:${port} is already in use (--port 0 picks a free one)\n`);
    } finally {
      srv.close();
    }
  });

  it('check: a search stopped by --max-schedules exits 4 (inconclusive), not 0', async () => {
    const r = await cli(['check', 'lr-overflow', '--max-schedules', '3', '-q']);
    expect(r.code).toBe(EXIT_INCONCLUSIVE);
    expect(r.out).toContain('the search did not finish');
    expect((await cli(['check', '-q'])).code).toBe(EXIT_OK); // the built-in race, searched to its bound
  });
});

describe('default output files are private (issue #15)', () => {
  it('a symlink planted at $TMPDIR/irqfwd: run writes under $TMPDIR/irqfwd-<uid>, the link target is untouched', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'irqfwd-tmp-'));
    const victim = join(tmp, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'default.normal.perfetto.json'), 'precious');
    symlinkSync(victim, join(tmp, 'irqfwd'));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      const io = captureIo();
      const real = nodeIo();
      io.writeFile = real.writeFile;
      io.tmpdir = real.tmpdir;
      const code = await main(['run', '-q'], fakeRunner(), io);
      expect(code).toBe(EXIT_OK);
      const uid = process.getuid?.();
      expect(readFileSync(join(tmp, `irqfwd-${uid}`, 'irqfwd', 'default.normal.perfetto.json'), 'utf8')).toBe(
        'trace of normal\n',
      );
      expect(readFileSync(join(victim, 'default.normal.perfetto.json'), 'utf8')).toBe('precious');
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('--trace naming a symlink: exit 2 with one line, the target untouched', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'irqfwd-tmp-'));
    writeFileSync(join(tmp, 'target'), 'precious');
    symlinkSync(join(tmp, 'target'), join(tmp, 't.normal.json'));
    const io = captureIo();
    io.writeFile = nodeIo().writeFile;
    const code = await main(['run', '-q', '--trace', join(tmp, 't.json')], fakeRunner(), io);
    expect(code).toBe(EXIT_USAGE);
    expect(io.err).toBe(`irqfwd: ${join(tmp, 't.normal.json')} is a symbolic link: not written through\n`);
    expect(readFileSync(join(tmp, 'target'), 'utf8')).toBe('precious');
  });
});
