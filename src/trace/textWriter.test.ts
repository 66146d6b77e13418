import { describe, expect, it } from 'vitest';
import {
  ARM_EXCEPTION_IRQ,
  EV_GIC_IAR,
  EV_IRQ_HANDLER_ENTRY,
  EV_IRQ_HANDLER_EXIT,
  EV_KVM_EXIT,
  u64hi,
  u64lo,
} from './events.js';
import { TRACE_FLAG_HARDIRQ, TRACE_FLAG_IRQS_OFF, traceFlags } from './ring.js';
import { latFlags, writeText } from './textWriter.js';
import { Tracer } from './tracer.js';

const HZ = 2_000_000_000; // 2 cycles per ns

function sample(): Tracer {
  const t = new Tracer({ capacity: 64 });
  t.comms.set(1234, 'qemu-system-aarch64');
  const name = t.intern('vfio-irq[0](fff51000.ethernet)');
  const pc = 0xffff800008a1b2c4n;
  t.ring.emitAt(240_000, EV_KVM_EXIT, 2, 1234, ARM_EXCEPTION_IRQ, 0, u64lo(pc), u64hi(pc));
  t.ring.cpuFlags[2] = traceFlags(TRACE_FLAG_IRQS_OFF | TRACE_FLAG_HARDIRQ, 1);
  t.ring.emitAt(246_000, EV_IRQ_HANDLER_ENTRY, 2, 1234, 42, name);
  t.ring.emitAt(5_000_001_999, EV_IRQ_HANDLER_EXIT, 2, 1234, 42, 1);
  t.ring.cpuFlags[2] = 0;
  t.ring.emitAt(5_000_003_000, EV_GIC_IAR, 0, 0, 1023, 0);
  return t;
}

describe('writeText (tracefs trace file)', () => {
  it('prints the header and lines of /sys/kernel/tracing/trace', () => {
    // Layout from kernel/trace/trace.c print_event_info + print_func_help_header_irq and
    // kernel/trace/trace_output.c trace_print_context ("%16s-%-7d " "[%03d] " lat flags " %5lu.%06lu" ": ").
    const expected = [
      '# tracer: nop',
      '#',
      '# entries-in-buffer/entries-written: 4/4   #P:4',
      '#',
      '#                                _-----=> irqs-off/BH-disabled',
      '#                               / _----=> need-resched',
      '#                              | / _---=> hardirq/softirq',
      '#                              || / _--=> preempt-depth',
      '#                              ||| / _-=> migrate-disable',
      '#                              |||| /     delay',
      '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION',
      '#              | |         |   |||||     |         |',
      ' qemu-system-aar-1234    [002] .....     0.000120: kvm_exit: IRQ: HSR_EC: 0x0000 (UNKNOWN), PC: 0xffff800008a1b2c4',
      ' qemu-system-aar-1234    [002] d.h1.     0.000123: irq_handler_entry: irq=42 name=vfio-irq[0](fff51000.ethernet)',
      ' qemu-system-aar-1234    [002] d.h1.     2.500001: irq_handler_exit: irq=42 ret=handled',
      '          <idle>-0       [000] .....     2.500002: gic_iar: intid=1023 seq=0',
      '',
    ].join('\n');
    expect(writeText(sample(), { hz: HZ, cpus: 4 })).toBe(expected);
  });

  it('renders the latency flags like trace_print_lat_fmt', () => {
    expect(latFlags(0)).toBe('.....');
    expect(latFlags(traceFlags(TRACE_FLAG_IRQS_OFF | TRACE_FLAG_HARDIRQ, 1))).toBe('d.h1.');
    expect(latFlags(traceFlags(0x01 | 0x02 | 0x04 | 0x20 | 0x40 | 0x08, 0x21))).toBe('DNZ12');
    expect(latFlags(traceFlags(0x02 | 0x20 | 0x10, 0))).toBe('bps..');
  });

  it('marks a CPU buffer that lost events after an overrun', () => {
    const t = new Tracer({ capacity: 3 });
    for (let i = 0; i < 5; i++) t.ring.emitAt(i * 2000, EV_GIC_IAR, i === 4 ? 1 : 0, 0, 30 + i, 0);
    const text = writeText(t, { hz: HZ, cpus: 2 });
    expect(text).toContain('# entries-in-buffer/entries-written: 3/5   #P:2');
    // CPU 0 lost records 0 and 1; its buffer restarts at the first line, before the annotation index (idx > 1).
    expect(text).not.toContain('##### CPU 0 buffer started ####');

    // CPU 1 lost its first record; its first surviving one is the third line printed, so it is annotated.
    const u = new Tracer({ capacity: 3 });
    [1, 0, 0, 0, 1].forEach((cpu, i) => {
      u.ring.emitAt(i * 2000, EV_GIC_IAR, cpu, 0, 30 + i, 0);
    });
    const lines = writeText(u, { hz: HZ, cpus: 2 }).split('\n');
    const at = lines.indexOf('##### CPU 1 buffer started ####');
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toContain('[001]');
    expect(lines.filter((l) => l.startsWith('#####')).length).toBe(1);
  });
});

describe('writeText (trace-cmd report)', () => {
  it('prints cpus= and trace-cmd report lines', () => {
    // trace-cmd tracecmd/trace-read.c: "%16s-%-5d [%03d]", " %6.1000d:" (libtraceevent print_event_time prints
    // %12llu microseconds below one second), then " %s: " and the name padded to 20 columns.
    const expected = [
      'cpus=4',
      ' qemu-system-aar-1234  [002]          120: kvm_exit:             IRQ: HSR_EC: 0x0000 (UNKNOWN), PC: 0xffff800008a1b2c4',
      ' qemu-system-aar-1234  [002]          123: irq_handler_entry:    irq=42 name=vfio-irq[0](fff51000.ethernet)',
      ' qemu-system-aar-1234  [002]     2.500001: irq_handler_exit:     irq=42 ret=handled',
      '          <idle>-0     [000]     2.500002: gic_iar:              intid=1023 seq=0',
      '',
    ].join('\n');
    expect(writeText(sample(), { hz: HZ, cpus: 4, format: 'report' })).toBe(expected);
  });

  it('reports dropped events per CPU', () => {
    const t = new Tracer({ capacity: 2 });
    for (let i = 0; i < 4; i++) t.ring.emitAt(i, EV_GIC_IAR, 1, 0, 30, 0);
    expect(writeText(t, { hz: HZ, format: 'report' })).toContain('CPU:1 [2 EVENTS DROPPED]\n');
  });
});

describe('determinism', () => {
  it('gives byte-identical text for identical emit sequences', () => {
    const a = writeText(sample(), { hz: HZ });
    const b = writeText(sample(), { hz: HZ });
    expect(a).toBe(b);
    expect(writeText(sample(), { hz: HZ, format: 'report' })).toBe(writeText(sample(), { hz: HZ, format: 'report' }));
  });
});
