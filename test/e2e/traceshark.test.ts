// The tracefs text trace as a third-party viewer reads it: traceshark's ftrace line grammar, applied to every event
// line: parser/ftrace/ftracegrammar.h FtraceGrammar::parseLine (cunctator/traceshark), in the order it matches tokens:
// comm-pid (the last `-` splits the pid; a comm may contain spaces), `[cpu]` (decimal), optional 5-character flags
// (FlagMatch: three letters or '.', then two hex digits or '.'), the time (vtl/time.h Time::fromString: digits[.digits]
// ending in ':'), the event name ending in ':', then any arguments. parser/traceparser.h parseLineFtrace also drops an
// event whose time is earlier than the previous one's (parseLineBugFixup), so times must never go back.
// The flags state (FlagMatch, commit 8882b14 "FtraceGrammar: Add parsing the interrupt flag field", January 2024) is
// in no release: Debian's traceshark 0.9.14~beta-1 (tag v0.9.14-beta) goes from CPUMatch straight to TimeMatch, so it
// rejects every line that carries the irqs-off/hardirq column (it reports "You have opened an empty trace!"; run
// headless under xvfb-run with its AT-SPI tree read through pyatspi, its Events table has 0 rows) and loads every
// event of the same trace with that column removed. This test is therefore the upstream grammar, not the Debian binary.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO, loadScenario } from '../../src/scenario/loader.js';
import { runScenario } from '../../src/scenario/runner.js';

interface Parsed {
  comm: string;
  pid: number;
  cpu: number;
  flags: string | null;
  timeNs: bigint;
  event: string;
}

/** traceshark's FtraceGrammar::parseLine on one whitespace-split line; null where it rejects the line. */
function parseFtraceLine(line: string): Parsed | null {
  const tok = line.split(/\s+/).filter((t) => t !== '');
  // comm tokens up to the first `[digits]` (CPUMatch), the last of them ending in -pid (extractNameAndPid)
  const cpuAt = tok.findIndex((t, i) => i > 0 && /^\[\d*\]?$/.test(t));
  if (cpuAt < 1) return null;
  const compound = tok.slice(0, cpuAt).join(' ');
  const dash = compound.lastIndexOf('-', compound.length - 2);
  if (dash < 0 || !/^\d+$/.test(compound.slice(dash + 1))) return null;
  let i = cpuAt + 1;
  let flags: string | null = null;
  if (/^[A-Za-z.]{3}[0-9a-fA-F.]{2}$/.test(tok[i] ?? '')) flags = tok[i++]!;
  const time = /^(\d+)(?:\.(\d*))?:$/.exec(tok[i++] ?? '');
  if (time === null) return null;
  const frac = (time[2] ?? '').slice(0, 9).padEnd(9, '0');
  const ev = tok[i] ?? '';
  if (!ev.endsWith(':') || ev.length < 2) return null;
  return {
    comm: compound.slice(0, dash),
    pid: Number(compound.slice(dash + 1)),
    cpu: Number(tok[cpuAt]!.slice(1, -1)),
    flags,
    timeNs: BigInt(time[1]!) * 1_000_000_000n + BigInt(frac),
    event: ev.slice(0, -1),
  };
}

describe("the text trace in traceshark's ftrace grammar (parser/ftrace/ftracegrammar.h parseLine)", () => {
  const run = runScenario(loadScenario(DEFAULT_SCENARIO, 'default'), { modes: ['normal'], trace: 'text' }).runs[0]!;
  const lines = run.trace!.data.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

  it('accepts every event line, with flags, and no event goes back in time (else the viewer drops it)', () => {
    expect(lines.length).toBeGreaterThan(1000);
    let prev = -1n;
    const rejected: string[] = [];
    const events = new Set<string>();
    for (const l of lines) {
      const p = parseFtraceLine(l);
      if (p === null || p.flags === null || p.timeNs < prev) {
        rejected.push(l);
        continue;
      }
      prev = p.timeNs;
      events.add(p.event);
    }
    expect(rejected).toEqual([]);
    for (const e of ['irq_handler_entry', 'kvm_entry', 'kvm_exit', 'gic_iar', 'vgic_maintenance', 'guest_eoi']) {
      expect(events).toContain(e);
    }
  });

  it('hardirq events carry d.h.. and the task the IRQ interrupted, the same task as the handler (trace_print_lat_fmt)', () => {
    const parsed = lines.map(parseFtraceLine);
    const entry = parsed.findIndex((p) => p?.event === 'irq_handler_entry');
    expect(entry).toBeGreaterThan(0);
    const handler = parsed[entry]!;
    expect(handler.flags).toBe('d.h..');
    // gic_iar before the handler and the VFIO/irqfd chain inside it: same CPU, same task, same flags
    for (const p of parsed.slice(entry - 2, entry + 3)) {
      if (p === null || p.cpu !== handler.cpu) continue;
      expect([p.event, p.comm, p.pid, p.flags]).toEqual([p.event, handler.comm, handler.pid, 'd.h..']);
    }
  });
});
