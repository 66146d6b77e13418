/**
 * A lock validator in the spirit of the kernel's lockdep (kernel/locking/lockdep.c): lock classes are named, every
 * acquisition while holding other locks adds "held → acquired" edges to a class graph, and it reports
 * - AA: a task acquiring a lock class it already holds (recursive locking: a certain self-deadlock for spinlocks);
 * - ABBA: an acquisition that closes a cycle in the class graph (a possible deadlock between two tasks);
 * - IRQ inversion: a class taken in hardirq context and also with interrupts enabled in process context
 *   ("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage"), which deadlocks when the IRQ hits the holder's CPU.
 * Reports are collected, not thrown: the checker turns them into violations and tests assert on them.
 */
export type LockdepKind = 'AA' | 'ABBA' | 'IRQ_INVERSION';

export interface LockdepReport {
  readonly kind: LockdepKind;
  readonly message: string;
  /** Lock class names involved, in the order of the report. */
  readonly locks: readonly string[];
  /** Task names involved: the one acquiring now and, for ABBA, the one that established the opposite order. */
  readonly tasks: readonly string[];
}

/** A lock class (struct lock_class): a class, not a literal, so the checker's state key reads it with one reader. */
class LockClass {
  /** The classes taken while this one was held; null until the first (most classes nest nothing). */
  after: Set<number> | null = null;
  inHardirq = false;
  hardirqOnTask: string | null = null;
  hardirqTask: string | null = null;
  irqReported = false;
  constructor(
    readonly id: number,
    readonly name: string,
  ) {}
}

export class Lockdep {
  readonly reports: LockdepReport[] = [];
  // Looked up by name only when a lock is made, among a few dozen classes: a linear search, and no Map of names for
  // the checker's state key to rehash in every state.
  private readonly classes: LockClass[] = [];
  /** Who first established the edge a → b (key a * 65536 + b). */
  private readonly edgeTask = new Map<number, string>();
  private readonly reported = new Set<string>();

  classId(name: string): number {
    for (const c of this.classes) if (c.name === name) return c.id;
    const c = new LockClass(this.classes.length, name);
    this.classes.push(c);
    return c.id;
  }

  /**
   * Validate acquiring class `cls` by task `task` which holds `held` (class ids, in acquisition order).
   * Returns false when the acquisition is an AA self-deadlock (the caller must not wait for itself).
   */
  acquire(
    cls: number,
    held: readonly { readonly cls: number }[],
    task: string,
    hardirq: boolean,
    irqsEnabled: boolean,
  ): boolean {
    const c = this.classes[cls]!;
    this.checkIrqUsage(c, task, hardirq, irqsEnabled);
    let ok = true;
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!.cls;
      if (h === cls) {
        this.report(
          'AA',
          `possible recursive locking detected: ${task} is trying to acquire ${c.name} it already holds`,
          [c.name],
          [task],
        );
        ok = false;
        continue;
      }
      const hc = this.classes[h]!;
      if (hc.after?.has(cls)) continue;
      const back = this.path(cls, h);
      if (back !== null) {
        const other = this.edgeTask.get(back[0]! * 65536 + back[1]!) ?? '?';
        this.report(
          'ABBA',
          `possible circular locking dependency detected: ${task} acquires ${c.name} while holding ${hc.name}; ` +
            `${other} established ${back.map((i) => this.classes[i]!.name).join(' -> ')}`,
          [hc.name, c.name],
          [task, other],
        );
      }
      hc.after ??= new Set();
      hc.after.add(cls);
      this.edgeTask.set(h * 65536 + cls, task);
    }
    return ok;
  }

  private checkIrqUsage(c: LockClass, task: string, hardirq: boolean, irqsEnabled: boolean): void {
    if (hardirq) {
      c.inHardirq = true;
      c.hardirqTask ??= task;
    } else if (irqsEnabled) {
      c.hardirqOnTask ??= task;
    }
    if (c.inHardirq && c.hardirqOnTask !== null && !c.irqReported) {
      c.irqReported = true;
      this.report(
        'IRQ_INVERSION',
        `inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage: ${c.name} is taken in hardirq context by ` +
          `${c.hardirqTask} and with interrupts enabled by ${c.hardirqOnTask}`,
        [c.name],
        [c.hardirqTask ?? '?', c.hardirqOnTask],
      );
    }
  }

  /**
   * What two orders of the same acquisitions leave alike: each class's successors and IRQ usage, and the reports by
   * kind and locks — not which task came first (the names and the message a report carries).
   */
  canonical(): {
    classes: { name: string; after: number[]; inHardirq: boolean; hardirqOn: boolean }[];
    reports: string[];
  } {
    return {
      classes: this.classes.map((c) => ({
        name: c.name,
        after: c.after === null ? [] : [...c.after].sort((a, b) => a - b),
        inHardirq: c.inHardirq,
        hardirqOn: c.hardirqOnTask !== null,
      })),
      reports: this.reports.map((r) => `${r.kind}:${[...r.locks].sort().join(',')}`).sort(),
    };
  }

  /** A path from class `from` to class `to` in the dependency graph, as class ids, or null. */
  private path(from: number, to: number): number[] | null {
    const prev = new Map<number, number>([[from, -1]]);
    const queue = [from];
    while (queue.length > 0) {
      const x = queue.shift()!;
      if (x === to) {
        const p: number[] = [];
        for (let y = x; y !== -1; y = prev.get(y)!) p.unshift(y);
        return p;
      }
      for (const n of this.classes[x]!.after ?? []) {
        if (!prev.has(n)) {
          prev.set(n, x);
          queue.push(n);
        }
      }
    }
    return null;
  }

  private report(kind: LockdepKind, message: string, locks: string[], tasks: string[]): void {
    const key = `${kind}:${locks.join(',')}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.reports.push({ kind, message, locks, tasks });
  }
}
