/**
 * A deterministic Chrome trace of `n` events in the writer's layout (tracks per CPU, vCPU, LR and INTID; one causal
 * chain of four marker events per interrupt, tied by flow events), for tests and benchmarks of the view at scale.
 */
import type { ChromeEvent, ChromeTrace } from './chromeTrace.js';

const STAGES: readonly { name: string; pid: number; tid: number }[] = [
  { name: 'device_assert', pid: 3, tid: 100320 },
  { name: 'gic_iar', pid: 1, tid: 100 },
  { name: 'gic_lr_write', pid: 2, tid: 20000 },
  { name: 'guest_eoi', pid: 2, tid: 10000 },
];

export function syntheticChromeTrace(n: number): ChromeTrace {
  const ev: ChromeEvent[] = [];
  const names: [number, number, string][] = [
    [1, 100, 'CPU 0'],
    [1, 101, 'CPU 1'],
    [2, 10000, 'vCPU 0'],
    [2, 20000, 'vCPU 0 LR0'],
    [3, 100320, 'INTID 80 line'],
    [3, 100321, 'INTID 80 GIC'],
  ];
  for (const [pid, tid, name] of names) ev.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name } });
  const flows: ChromeEvent[] = [];
  // per interrupt: a 'guest' slice on CPU 1, then the four chain markers; every fifth event slot is the slice
  let made = 0;
  for (let seq = 1; made < n; seq++) {
    const base = seq * 1.0; // µs
    ev.push({ name: 'guest (vCPU 0)', cat: 'kvm', ph: 'X', ts: base, dur: 0.6, pid: 1, tid: 101, args: { seq: 0 } });
    made++;
    STAGES.forEach((st, k) => {
      if (made >= n) return;
      const ts = base + 0.1 + k * 0.2;
      ev.push({
        name: st.name,
        cat: 'irqfwd',
        ph: 'X',
        ts,
        dur: 0.02,
        pid: st.pid,
        tid: st.tid,
        args: { intid: 80, seq },
      });
      flows.push({
        name: 'irq',
        cat: 'irqfwd.flow',
        ph: k === 0 ? 's' : k === 3 ? 'f' : 't',
        id: seq,
        ts,
        pid: st.pid,
        tid: st.tid,
      });
      made++;
    });
  }
  return { traceEvents: [...ev, ...flows], displayTimeUnit: 'ns', otherData: { source: 'synthetic' } };
}
