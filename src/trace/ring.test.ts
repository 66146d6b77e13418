import { describe, expect, it } from 'vitest';
import { EV_GIC_IAR, MAX_ARGS, u64hi, u64lo } from './events.js';
import { CommRegistry, InternTable, TRACE_FLAG_HARDIRQ, TRACE_FLAG_IRQS_OFF, TraceRing, traceFlags } from './ring.js';

function held(r: TraceRing): number[] {
  const out: number[] = [];
  for (let i = 0; i < r.size; i++) out.push(r.arg(r.slot(i), 0));
  return out;
}

describe('TraceRing', () => {
  it('keeps records in order until full', () => {
    const r = new TraceRing({ capacity: 4 });
    for (let i = 0; i < 3; i++) r.emitAt(i * 10, EV_GIC_IAR, 1, 100, i);
    expect(r.size).toBe(3);
    expect(held(r)).toEqual([0, 1, 2]);
    expect(r.lost).toBe(0);
    expect(r.written).toBe(3);
  });

  it('overwrites the oldest when full and counts the loss against the CPU that lost it', () => {
    const r = new TraceRing({ capacity: 4 });
    for (let i = 0; i < 10; i++) r.emitAt(i, EV_GIC_IAR, i % 2, 1, i);
    expect(r.size).toBe(4);
    expect(held(r)).toEqual([6, 7, 8, 9]);
    expect(r.lost).toBe(6);
    expect(r.written).toBe(10);
    // records 0..5 were lost: 0,2,4 on CPU 0 and 1,3,5 on CPU 1
    expect(r.lostPerCpu[0]).toBe(3);
    expect(r.lostPerCpu[1]).toBe(3);
    // timestamps follow their records around the wrap
    expect(Array.from({ length: 4 }, (_, i) => r.ts[r.slot(i)])).toEqual([6, 7, 8, 9]);
  });

  it('in stop mode keeps the first records and counts the refused ones', () => {
    const r = new TraceRing({ capacity: 3, mode: 'stop' });
    for (let i = 0; i < 5; i++) r.emitAt(i, EV_GIC_IAR, 2, 1, i);
    expect(held(r)).toEqual([0, 1, 2]);
    expect(r.lost).toBe(2);
    expect(r.lostPerCpu[2]).toBe(2);
  });

  it('writes records in place into its preallocated columns (emit allocates nothing)', () => {
    const r = new TraceRing({ capacity: 1024, time: { now: 77 } });
    const columns = () => [r.ts, r.cpu, r.pid, r.event, r.flags, r.args].map((a) => a.buffer);
    const before = columns();
    r.cpuFlags[3] = traceFlags(TRACE_FLAG_IRQS_OFF | TRACE_FLAG_HARDIRQ, 1);
    for (let i = 0; i < 100_000; i++) r.emit(EV_GIC_IAR, 3, 42, i, 1, 2, 3, 4, 5, 6, 7);
    const after = columns();
    for (let k = 0; k < before.length; k++) expect(after[k]).toBe(before[k]);
    const last = r.slot(r.size - 1);
    expect(last).toBe((100_000 - 1) % 1024);
    expect(r.ts[last]).toBe(77);
    expect(r.pid[last]).toBe(42);
    expect(r.flags[last]).toBe(0x0109);
    expect(Array.from(r.args.subarray(last * MAX_ARGS, last * MAX_ARGS + MAX_ARGS))).toEqual([
      99_999, 1, 2, 3, 4, 5, 6, 7,
    ]);
  });

  it('rejects a non-positive capacity', () => {
    expect(() => new TraceRing({ capacity: 0 })).toThrow(RangeError);
  });

  it('splits u64 values into two exact 32-bit halves', () => {
    expect(u64lo(0xffff800008a1b2c4n)).toBe(0x08a1b2c4);
    expect(u64hi(0xffff800008a1b2c4n)).toBe(0xffff8000);
    expect(u64lo(0x1_0000_0005)).toBe(5);
    expect(u64hi(0x1_0000_0005)).toBe(1);
  });
});

describe('InternTable and CommRegistry', () => {
  it('interns each string once', () => {
    const t = new InternTable();
    const a = t.intern('eth0');
    expect(t.intern('eth1')).not.toBe(a);
    expect(t.intern('eth0')).toBe(a);
    expect(t.str(a)).toBe('eth0');
    expect(t.size).toBe(2);
    expect(() => t.str(9)).toThrow(RangeError);
  });

  it('looks comms up like trace_find_cmdline', () => {
    const c = new CommRegistry();
    c.set(1234, 'qemu-system-aarch64');
    expect(c.get(1234)).toBe('qemu-system-aar');
    expect(c.get(0)).toBe('<idle>');
    expect(c.get(999)).toBe('<...>');
    c.setVcpu(1235, 1);
    expect(c.vcpuOf(1235)).toBe(1);
    expect(c.vcpuOf(1234)).toBe(-1);
  });
});
