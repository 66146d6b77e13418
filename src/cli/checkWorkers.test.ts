import { describe, expect, it } from 'vitest';
import type { ScenarioRunner } from '../scenario/runnerApi.js';
import { type CliIo, EXIT_OK, EXIT_USAGE, main } from './commands.js';

function captureIo(): CliIo & { out: string; err: string } {
  let t = 0;
  const io = {
    out: '',
    err: '',
    stdout: (s: string) => {
      io.out += s;
    },
    stderr: (s: string) => {
      io.err += s;
    },
    stderrIsTTY: false,
    columns: 80,
    now: () => ++t,
    readFile: (): string => {
      throw new Error('no file reads expected');
    },
    writeFile: () => {},
    exists: () => false,
    tmpdir: () => '/tmp/test',
  };
  return io;
}

const noRunner: ScenarioRunner = {
  run: () => {
    throw new Error('check must not use the scenario runner');
  },
};

describe('irqfwd check --reduction / --workers', () => {
  it('sleep-set reduction: the verdict names it and says what a bounded reduced search does not prove', async () => {
    const io = captureIo();
    expect(await main(['check', '--reduction', 'sleep', '-q'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toMatch(/^verdict: PASS — bounded by preemption bound 1 \(\d+ choice\(s\) cut\): 141 schedules/);
    expect(io.out).toMatch(/with sleep sets under a bound, not even every schedule within it/);
  });

  it('two workers: the same bounded pass, and the verdict says the search was shared', async () => {
    const io = captureIo();
    expect(await main(['check', '--workers', '2', '-q'], noRunner, io)).toBe(EXIT_OK);
    expect(io.out).toMatch(/^verdict: PASS — bounded by preemption bound 1 .*with DPOR under a bound.*, 2 workers\n$/);
  });

  it('bad values and --pct combinations are usage errors', async () => {
    for (const args of [
      ['check', '--reduction', 'magic'],
      ['check', '--workers', '0'],
      ['check', '--pct', '--workers', '2'],
    ]) {
      const io = captureIo();
      expect(await main(args, noRunner, io)).toBe(EXIT_USAGE);
      expect(io.err).toMatch(/irqfwd check: .*(--reduction|--workers)/);
    }
  });
});
