/**
 * The trace buffer: a preallocated ring of fixed-width records held in typed arrays (one column per field, plus
 * MAX_ARGS argument slots per record). Writing a record stores numbers into those arrays and nothing else, so
 * emitting allocates nothing. Like ftrace, the ring either overwrites its oldest records when full (counting
 * them as lost, per CPU, which the text writer reports as `CPU:n [LOST k EVENTS]`) or stops taking new ones.
 *
 * Strings are interned once (`intern(s)` → id) and records carry the id. Comms (task names) are kept by pid, as
 * the kernel's saved_cmdlines are, for the writers.
 */
import { MAX_ARGS, type StringLookup } from './events.js';

/** What the ring reads the current time (in cycles) from; the engine satisfies it. */
export interface TimeSource {
  readonly now: number;
}

/** 'overwrite': drop the oldest record when full (ftrace's default); 'stop': drop the new one. */
export type RingMode = 'overwrite' | 'stop';

/** kernel/trace/trace.h TRACE_FLAG_*: the low byte of a record's flags. The high byte is the preempt count. */
export const TRACE_FLAG_IRQS_OFF = 0x01;
export const TRACE_FLAG_BH_OFF = 0x02;
export const TRACE_FLAG_NEED_RESCHED = 0x04;
export const TRACE_FLAG_HARDIRQ = 0x08;
export const TRACE_FLAG_SOFTIRQ = 0x10;
export const TRACE_FLAG_PREEMPT_RESCHED = 0x20;
export const TRACE_FLAG_NMI = 0x40;

/** Pack trace flags and a preempt count into a record's 16-bit flags word. */
export function traceFlags(flags: number, preemptCount = 0): number {
  return (flags & 0xff) | ((preemptCount & 0xff) << 8);
}

/** The most CPUs a ring keeps per-CPU state for. */
export const MAX_TRACE_CPUS = 256;

export interface RingOptions {
  /** Records the ring holds (default 65536). */
  capacity?: number;
  mode?: RingMode;
  /** Time source for emit(); emitAt() takes the time explicitly. */
  time?: TimeSource;
}

export class InternTable implements StringLookup {
  private readonly ids = new Map<string, number>();
  private readonly strings: string[] = [];

  /** The id of a string, adding it on first use. Intern at setup time; the lookup is a Map get afterwards. */
  intern(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.ids.set(s, id);
    }
    return id;
  }

  str(id: number): string {
    const s = this.strings[id];
    if (s === undefined) throw new RangeError(`no interned string with id ${id}`);
    return s;
  }

  get size(): number {
    return this.strings.length;
  }
}

/** TASK_COMM_LEN - 1: the longest comm the kernel keeps. */
export const TASK_COMM_MAX = 15;

export class CommRegistry {
  private readonly comms = new Map<number, string>();
  private readonly vcpus = new Map<number, number>();

  /** Record a task's comm, truncated as the kernel truncates it. */
  set(pid: number, comm: string): void {
    this.comms.set(pid, comm.slice(0, TASK_COMM_MAX));
  }

  /** kernel/trace/trace.c trace_find_cmdline: pid 0 is "<idle>", an unknown pid "<...>". */
  get(pid: number): string {
    if (pid === 0) return '<idle>';
    return this.comms.get(pid) ?? '<...>';
  }

  has(pid: number): boolean {
    return this.comms.has(pid);
  }

  /** Mark a pid as the thread of vCPU `index` (the Chrome writer puts its guest events on that vCPU's track). */
  setVcpu(pid: number, index: number): void {
    this.vcpus.set(pid, index);
  }

  vcpuOf(pid: number): number {
    return this.vcpus.get(pid) ?? -1;
  }
}

export class TraceRing {
  readonly capacity: number;
  readonly mode: RingMode;
  time: TimeSource | null;

  /** Columns, indexed by physical slot. */
  readonly ts: Float64Array;
  readonly cpu: Uint16Array;
  readonly pid: Int32Array;
  readonly event: Uint16Array;
  readonly flags: Uint16Array;
  /** MAX_ARGS slots per record: record p's arguments are args[p * MAX_ARGS ...]. */
  readonly args: Float64Array;

  /** Flags word (traceFlags) stamped on records emitted on each CPU; model code sets it on IRQ entry/exit. */
  readonly cpuFlags = new Uint16Array(MAX_TRACE_CPUS);
  /** Records lost per CPU (overwritten in overwrite mode, refused in stop mode). */
  readonly lostPerCpu = new Float64Array(MAX_TRACE_CPUS);

  readonly strings = new InternTable();
  readonly comms = new CommRegistry();

  private start = 0;
  private count = 0;
  /** Records ever offered to the ring (kept + lost). */
  written = 0;
  lost = 0;

  constructor(opts: RingOptions = {}) {
    const cap = opts.capacity ?? 65536;
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`ring capacity must be a positive integer, got ${cap}`);
    this.capacity = cap;
    this.mode = opts.mode ?? 'overwrite';
    this.time = opts.time ?? null;
    this.ts = new Float64Array(cap);
    this.cpu = new Uint16Array(cap);
    this.pid = new Int32Array(cap);
    this.event = new Uint16Array(cap);
    this.flags = new Uint16Array(cap);
    this.args = new Float64Array(cap * MAX_ARGS);
  }

  /** Records held. */
  get size(): number {
    return this.count;
  }

  intern(s: string): number {
    return this.strings.intern(s);
  }

  /** Physical slot of the i-th oldest record held. */
  slot(i: number): number {
    const p = this.start + i;
    return p >= this.capacity ? p - this.capacity : p;
  }

  arg(slot: number, k: number): number {
    return this.args[slot * MAX_ARGS + k]!;
  }

  clear(): void {
    this.start = 0;
    this.count = 0;
    this.written = 0;
    this.lost = 0;
    this.lostPerCpu.fill(0);
  }

  /** Write a record stamped with the time source's now and the CPU's current flags. */
  emit(
    eventId: number,
    cpu: number,
    pid: number,
    a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    a4 = 0,
    a5 = 0,
    a6 = 0,
    a7 = 0,
  ): void {
    this.emitAt(this.time === null ? 0 : this.time.now, eventId, cpu, pid, a0, a1, a2, a3, a4, a5, a6, a7);
  }

  /** Write a record with an explicit timestamp (cycles). Allocates nothing. */
  emitAt(
    ts: number,
    eventId: number,
    cpu: number,
    pid: number,
    a0 = 0,
    a1 = 0,
    a2 = 0,
    a3 = 0,
    a4 = 0,
    a5 = 0,
    a6 = 0,
    a7 = 0,
  ): void {
    this.written++;
    let p: number;
    if (this.count < this.capacity) {
      p = this.start + this.count;
      if (p >= this.capacity) p -= this.capacity;
      this.count++;
    } else if (this.mode === 'overwrite') {
      p = this.start;
      const victim = this.cpu[p]!;
      this.lostPerCpu[victim] = this.lostPerCpu[victim]! + 1;
      this.lost++;
      this.start = p + 1 === this.capacity ? 0 : p + 1;
    } else {
      this.lostPerCpu[cpu] = this.lostPerCpu[cpu]! + 1;
      this.lost++;
      return;
    }
    this.ts[p] = ts;
    this.cpu[p] = cpu;
    this.pid[p] = pid;
    this.event[p] = eventId;
    this.flags[p] = this.cpuFlags[cpu]!;
    const b = p * MAX_ARGS;
    const a = this.args;
    a[b] = a0;
    a[b + 1] = a1;
    a[b + 2] = a2;
    a[b + 3] = a3;
    a[b + 4] = a4;
    a[b + 5] = a5;
    a[b + 6] = a6;
    a[b + 7] = a7;
  }
}
