/**
 * Text output in the two formats kernel engineers read:
 *
 * - 'tracefs': /sys/kernel/tracing/trace with the default irq-info header
 *   (kernel/trace/trace.c s_show, print_event_info, print_func_help_header_irq; kernel/trace/trace_output.c
 *   trace_print_context, trace_print_lat_fmt, trace_print_time):
 *   `%16s-%-7d [%03d] <flags> %5lu.%06lu: <event>: <fields>`
 * - 'report': `trace-cmd report` (trace-cmd tracecmd/trace-read.c trace_show_data, print_event_name; libtraceevent
 *   print_event_time): `cpus=N` then `%16s-%-5d [%03d] %5llu.%06llu: <event>: <pad to 20> <fields>`.
 *
 * Time is converted from cycles to integer nanoseconds with the clock rate, then to microseconds rounding to
 * nearest as ns2usecs() and print_event_time() do. The output depends only on the records, so identical input
 * gives identical bytes.
 */
import { type EventRegistry, MAX_ARGS } from './events.js';
import type { TraceRing } from './ring.js';
import {
  TRACE_FLAG_BH_OFF,
  TRACE_FLAG_HARDIRQ,
  TRACE_FLAG_IRQS_OFF,
  TRACE_FLAG_NEED_RESCHED,
  TRACE_FLAG_NMI,
  TRACE_FLAG_PREEMPT_RESCHED,
  TRACE_FLAG_SOFTIRQ,
} from './ring.js';

export type TextFormat = 'tracefs' | 'report';

/** Anything holding a ring and the registry that describes its events (a Tracer does). */
export interface TraceSource {
  readonly ring: TraceRing;
  readonly events: EventRegistry;
}

export interface TextWriterOptions {
  /** Clock rate in Hz: cycles → ns. */
  hz: number;
  format?: TextFormat;
  /** CPUs online (`#P:` and `cpus=`); default: highest CPU in the records + 1. */
  cpus?: number;
  /** Name on the `# tracer:` line (default nop). */
  tracer?: string;
}

/** Cycles → integer nanoseconds (floor), exact for any cycle count below 2^53. */
export function cyclesToNs(cycles: number, hz: number): bigint {
  const c = BigInt(Math.floor(cycles));
  if (Number.isInteger(hz)) return (c * 1_000_000_000n) / BigInt(hz);
  return BigInt(Math.floor((cycles * 1e9) / hz));
}

/** kernel/trace/trace_output.c trace_print_lat_fmt: irqs-off, need-resched, hardirq/softirq, preempt, migrate. */
export function latFlags(word: number): string {
  const fl = word & 0xff;
  const pc = (word >>> 8) & 0xff;
  const irqsOff = fl & TRACE_FLAG_IRQS_OFF;
  const bhOff = fl & TRACE_FLAG_BH_OFF;
  const c1 = irqsOff && bhOff ? 'D' : irqsOff ? 'd' : bhOff ? 'b' : '.';
  const nr = fl & (TRACE_FLAG_NEED_RESCHED | TRACE_FLAG_PREEMPT_RESCHED);
  const c2 =
    nr === (TRACE_FLAG_NEED_RESCHED | TRACE_FLAG_PREEMPT_RESCHED)
      ? 'N'
      : nr === TRACE_FLAG_NEED_RESCHED
        ? 'n'
        : nr === TRACE_FLAG_PREEMPT_RESCHED
          ? 'p'
          : '.';
  const nmi = fl & TRACE_FLAG_NMI;
  const hard = fl & TRACE_FLAG_HARDIRQ;
  const soft = fl & TRACE_FLAG_SOFTIRQ;
  const c3 = nmi && hard ? 'Z' : nmi ? 'z' : hard && soft ? 'H' : hard ? 'h' : soft ? 's' : '.';
  const c4 = pc & 0xf ? (pc & 0xf).toString(16) : '.';
  const c5 = pc & 0xf0 ? (pc >>> 4).toString(16) : '.';
  return c1 + c2 + c3 + c4 + c5;
}

function usecs(ns: bigint): bigint {
  return (ns + 500n) / 1000n;
}

/** trace_print_time with TRACE_FILE_TIME_IN_NS: ` %5lu.%06lu`. */
function tracefsTime(ns: bigint): string {
  const us = usecs(ns);
  return ` ${(us / 1_000_000n).toString().padStart(5)}.${(us % 1_000_000n).toString().padStart(6, '0')}`;
}

/** libtraceevent print_event_time for trace-cmd's " %6.1000d:": secs.usecs once past one second, else %12llu. */
function reportTime(ns: bigint): string {
  const us = usecs(ns);
  const p10 = 1_000_000n;
  if (p10 < us) return `${(us / p10).toString().padStart(5)}.${(us % p10).toString().padStart(6, '0')}`;
  return us.toString().padStart(12);
}

/** kernel/trace/trace.c print_func_help_header_irq (without TGID): the column legend. */
function irqHelpHeader(): string {
  // `%.*s` with precision 2 (no TGID column) prints the first two characters of its padding argument.
  const gap = '  ';
  const lead = `#${' '.repeat(28)}${gap}`;
  return [
    `${lead}  _-----=> irqs-off/BH-disabled`,
    `${lead} / _----=> need-resched`,
    `${lead}| / _---=> hardirq/softirq`,
    `${lead}|| / _--=> preempt-depth`,
    `${lead}||| / _-=> migrate-disable`,
    `${lead}|||| /     delay`,
    `#           TASK-PID  ${gap} CPU#  |||||  TIMESTAMP  FUNCTION`,
    `#              | |    ${gap}   |   |||||     |         |`,
  ].join('\n');
}

/** Render the ring's records as text. */
export function writeText(src: TraceSource, opts: TextWriterOptions): string {
  const { ring, events } = src;
  const format = opts.format ?? 'tracefs';
  let maxCpu = -1;
  for (let i = 0; i < ring.size; i++) maxCpu = Math.max(maxCpu, ring.cpu[ring.slot(i)]!);
  const cpus = opts.cpus ?? Math.max(1, maxCpu + 1);
  const out: string[] = [];
  if (format === 'tracefs') {
    out.push(`# tracer: ${opts.tracer ?? 'nop'}`);
    out.push('#');
    out.push(`# entries-in-buffer/entries-written: ${ring.size}/${ring.size + ring.lost}   #P:${cpus}`);
    out.push('#');
    out.push(irqHelpHeader());
  } else {
    out.push(`cpus=${cpus}`);
  }
  const seenCpu = new Set<number>();
  const reportLost = ring.mode === 'overwrite';
  for (let i = 0; i < ring.size; i++) {
    const p = ring.slot(i);
    const cpu = ring.cpu[p]!;
    const pid = ring.pid[p]!;
    if (!seenCpu.has(cpu)) {
      seenCpu.add(cpu);
      const lost = ring.lostPerCpu[cpu]!;
      if (reportLost && lost > 0) {
        // The trace file marks where an overrun CPU buffer restarts (test_cpu_buff_start: not before idx 2);
        // trace-cmd reports the page's missed events.
        if (format === 'tracefs') {
          if (i > 1) out.push(`##### CPU ${cpu} buffer started ####`);
        } else {
          out.push(`CPU:${cpu} [${lost} EVENTS DROPPED]`);
        }
      }
    }
    const def = events.byId(ring.event[p]!);
    const fields = events.formatFields(def, events.decode(def, ring.args, p * MAX_ARGS, ring.strings));
    const ns = cyclesToNs(ring.ts[p]!, opts.hz);
    const comm = ring.comms.get(pid);
    const cpuStr = cpu.toString().padStart(3, '0');
    if (format === 'tracefs') {
      out.push(
        `${comm.padStart(16)}-${pid.toString().padEnd(7)} [${cpuStr}] ${latFlags(ring.flags[p]!)}${tracefsTime(ns)}: ${def.name}: ${fields}`,
      );
    } else {
      const padName = def.name.length < 20 ? ' '.repeat(20 - def.name.length) : '';
      out.push(
        `${comm.padStart(16)}-${pid.toString().padEnd(5)} [${cpuStr}] ${reportTime(ns)}: ${def.name}: ${padName}${fields}`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}
