import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ScenarioRunner } from '../scenario/runnerApi.js';
import { type CliIo, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_USAGE, main } from './commands.js';

interface Captured extends CliIo {
  out: string;
  err: string;
  files: Map<string, string>;
}

function captureIo(): Captured {
  let t = 0;
  const io: Captured = {
    out: '',
    err: '',
    files: new Map(),
    stdout: (s) => {
      io.out += s;
    },
    stderr: (s) => {
      io.err += s;
    },
    stderrIsTTY: false,
    columns: 80,
    now: () => {
      t += 1;
      return t;
    },
    readFile: (p) => io.files.get(p) ?? readFileSync(p, 'utf8'),
    writeFile: (p, d) => {
      io.files.set(p, d);
    },
    exists: (p) => io.files.has(p) || existsSync(p),
    tmpdir: () => '/tmp/test',
  };
  return io;
}

const noRunner: ScenarioRunner = {
  run: () => {
    throw new Error('check must not use the scenario runner');
  },
};

describe('irqfwd check', () => {
  it('bypass-race without --variant runs its own default variant, bypass (the 2015 series option)', async () => {
    const io = captureIo();
    expect(await main(['check', 'bypass-race', '--bound', '0', '-q'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toMatch(/PASS .*bypass-race \[bypass\]/);
  });

  it('naive: exit 1, prints the invariant and the shrunk schedule, saves a replay file that --replay reproduces', async () => {
    const io = captureIo();
    expect(await main(['check', '--variant', 'naive', '-o', '/tmp/test/naive.json'], noRunner, io)).toBe(EXIT_FAIL);
    expect(io.out).toMatch(/violated: no-irq-left-active: INTID 80 left active/);
    expect(io.out).toMatch(/verdict: VIOLATION of no-irq-left-active — found by systematic search/);
    expect(io.err).toMatch(
      /check: \d+ schedules, \d+ states, \d+ steps, \d+ schedules\/s, \d+ states\/s, max depth \d+/,
    );
    const saved = JSON.parse(io.files.get('/tmp/test/naive.json')!);
    expect(saved).toMatchObject({
      format: 1,
      scenario: 'assign-race',
      variant: 'naive',
      invariant: 'no-irq-left-active',
    });
    const io2 = captureIo();
    io2.files.set('/tmp/test/naive.json', io.files.get('/tmp/test/naive.json')!);
    expect(await main(['check', '--replay', '/tmp/test/naive.json'], noRunner, io2)).toBe(EXIT_FAIL);
    expect(io2.out).toMatch(/verdict: VIOLATION of no-irq-left-active reproduced\n$/);
  });

  it('protocol: exit 0 with a verdict saying the pass is bounded, and by what', async () => {
    const io = captureIo();
    expect(await main(['check', '--bound', '1', '-q'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toMatch(/^verdict: PASS — bounded by preemption bound 1 \(\d+ choice\(s\) cut\): \d+ schedules/);
    expect(io.err).toBe('');
  });

  it('--search stateful: the verdict counts states explored, distinct states and schedules', async () => {
    const io = captureIo();
    expect(await main(['check', '--search', 'stateful', '--bound', '0', '-q'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toMatch(
      /^verdict: PASS — bounded by preemption bound 0 \(\d+ choice\(s\) cut; stateful, every schedule within the bound\): \d+ states explored, \d+ distinct, \d+ schedules of assign-race \[protocol\]/,
    );
  });

  it('--json: the stateful verdict as data, with the same counts as the text verdict', async () => {
    const text = captureIo();
    expect(await main(['check', '--search', 'stateful', '--bound', '0', '-q'], noRunner, text)).toBe(EXIT_OK);
    const io = captureIo();
    expect(await main(['check', '--search', 'stateful', '--bound', '0', '--json', '-q'], noRunner, io)).toBe(EXIT_OK);
    const j = JSON.parse(io.out) as Record<string, unknown>;
    expect(j).toMatchObject({
      scenario: 'assign-race',
      search: 'stateful',
      completeness: 'bounded',
      limits: 'preemption bound 0',
    });
    const [, states, distinct, schedules] = /(\d+) states explored, (\d+) distinct, (\d+) schedules/.exec(text.out)!;
    expect([j.states, j.distinct, j.schedules]).toEqual([Number(states), Number(distinct), Number(schedules)]);
    expect(j.verdict).toBe(text.out.trim());
  });

  it('--bound none runs the stateful search where the machine can be copied: a complete verdict with its counts', async () => {
    const io = captureIo();
    expect(await main(['check', '--bound', 'none', '--raises', '0', '-q'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toMatch(
      /^verdict: PASS — exhaustive \(stateful, sleep sets\): every reachable state of assign-race \[protocol\] \((\d+) states explored, (\d+) distinct, \d+ schedules; (\d+) with at most one agent to take followed without a key; \d+ distinct end states judged\)/,
    );
    const json = captureIo();
    expect(await main(['check', '--bound', 'none', '--raises', '0', '--json', '-q'], noRunner, json)).toBe(EXIT_OK);
    const j = JSON.parse(json.out);
    expect(j).toMatchObject({ search: 'stateful', reduction: 'sleep', completeness: 'exhaustive' });
    // a forced state (at most one agent to take) is explored but not keyed: explored ≥ distinct + forced
    const [, states, distinct, forced] = /\((\d+) states explored, (\d+) distinct, \d+ schedules; (\d+) with/.exec(
      io.out,
    )!;
    expect([j.states, j.distinct, j.forced]).toEqual([Number(states), Number(distinct), Number(forced)]);
    expect(j.forced).toBeGreaterThan(0);
    expect(j.states).toBeGreaterThanOrEqual(j.distinct + j.forced);
  });

  it('--bound none runs the stateful search on bypass-race and check-assign-before-vcpu too (KVM as frames)', async () => {
    for (const name of ['bypass-race', 'check-assign-before-vcpu']) {
      const io = captureIo();
      expect(await main(['check', name, '--bound', 'none', '--max-schedules', '3', '--json', '-q'], noRunner, io)).toBe(
        EXIT_INCONCLUSIVE,
      );
      expect(JSON.parse(io.out)).toMatchObject({ search: 'stateful', reduction: 'sleep', completeness: 'cut' });
    }
  });

  it('--json on a violation: the invariant, the shrunk counterexample and its replay file', async () => {
    const io = captureIo();
    expect(await main(['check', '--variant', 'naive', '--bound', '1', '--json', '-q'], noRunner, io)).toBe(EXIT_FAIL);
    const j = JSON.parse(io.out) as { verdict: string; replayFile: string; counterexample: { choices: number[] } };
    expect(j.verdict).toBe('VIOLATION of no-irq-left-active');
    expect(io.files.has(j.replayFile)).toBe(true);
    expect(j.counterexample.choices.length).toBeGreaterThan(0);
  });

  it('--pct: the verdict says sampled', async () => {
    const io = captureIo();
    expect(await main(['check', '--pct', '--runs', '5', '--seed', '3', '-q'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toBe(
      'verdict: PASS — sampled (PCT depth 2, 5 of 5 run(s), seed 3): no violation found; sampling proves nothing\n',
    );
  });

  it('bad arguments exit 2', async () => {
    for (const argv of [
      ['check', '--variant', 'nope'],
      ['check', '--bound', 'x'],
      ['check', '--runs', '5'],
      ['check', '--pct', '--bound', '1'],
      ['check', '--search', 'stateless-ish'],
      ['check', '--search', 'stateful', '--workers', '2'],
      ['check', 'no-such-scenario'],
      ['check', '--frobnicate'],
    ]) {
      const io = captureIo();
      expect(await main(argv, noRunner, io)).toBe(EXIT_USAGE);
      expect(io.err).toMatch(/^irqfwd check: /);
    }
  });

  it('a scenario file: checked like a built-in one; an uncheckable file exits 2 saying why', async () => {
    const io = captureIo();
    const argv = ['check', 'check-assign-race', '--variant', 'naive', '-q', '-o', '/tmp/test/file.json'];
    expect(await main(argv, noRunner, io)).toBe(EXIT_FAIL);
    expect(io.out).toMatch(/verdict: VIOLATION of no-irq-left-active — found by systematic search/);
    expect(JSON.parse(io.files.get('/tmp/test/file.json')!)).toMatchObject({
      scenario: 'check-assign-race',
      options: { file: 'check-assign-race' },
    });
    const bad = captureIo();
    expect(await main(['check', 'hypercall'], noRunner, bad)).toBe(EXIT_USAGE);
    expect(bad.err).toMatch(
      /^irqfwd check: hypercall: cannot be checked: a guest trap loop \(hvc\/mmio\) never quiesces/,
    );
    const legacy = captureIo();
    expect(await main(['check', '--irq-numbering', 'nope'], noRunner, legacy)).toBe(EXIT_USAGE);
  });

  it('trace --replay: only --format and -o apply', async () => {
    const io = captureIo();
    expect(await main(['trace', 'default', '--replay', '/tmp/test/x.json'], noRunner, io)).toBe(EXIT_USAGE);
    expect(io.err).toMatch(/trace --replay takes no scenario/);
    const io2 = captureIo();
    expect(await main(['trace', '--replay', '/tmp/test/none.json'], noRunner, io2)).toBe(EXIT_USAGE);
    expect(io2.err).toMatch(/cannot replay \/tmp\/test\/none\.json/);
  });

  it('--help prints the usage', async () => {
    const io = captureIo();
    expect(await main(['check', '--help'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toMatch(/^Usage: irqfwd check \[scenario\]/);
  });
});
