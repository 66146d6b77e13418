import type { EnabledAgents } from './engine.js';
/**
 * Indexed binary min-heap of agent ids keyed by (time, seq). seq is a monotonically increasing insertion counter,
 * so equal times pop in insertion order: a stable, deterministic tie-break. Agents can be removed or re-keyed in
 * O(log n) through their position index, which the checker needs to run an agent that is not the earliest.
 * Storage is typed arrays that grow by doubling: nothing is allocated per push or pop.
 */
export class EventHeap implements EnabledAgents {
  private heap: Int32Array;
  private time: Float64Array;
  private seq: Float64Array;
  private pos: Int32Array;
  private n = 0;
  private nextSeq = 0;
  /** Bumped by every insertion, move and removal: a key read from the minimum stays valid while it is unchanged. */
  private changes = 0;

  constructor(capacity = 64) {
    this.heap = new Int32Array(capacity);
    this.time = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1);
  }

  get size(): number {
    return this.n;
  }

  has(agent: number): boolean {
    return agent < this.pos.length && this.pos[agent]! >= 0;
  }

  /** The time key of a queued agent. */
  timeOf(agent: number): number {
    return this.time[agent]!;
  }

  /** Agent with the smallest (time, seq), or -1 when empty. */
  peek(): number {
    return this.n > 0 ? this.heap[0]! : -1;
  }

  /** EnabledAgents: the heap holds exactly the enabled agents. */
  earliest(): number {
    return this.peek();
  }

  /** The i-th heap slot (unordered beyond slot 0): lets a scheduler list the queued agents without allocating. */
  at(i: number): number {
    return this.heap[i]!;
  }

  /** Insert the agent, or move it if it is already queued. */
  push(agent: number, t: number): void {
    this.pushKeyed(agent, t, this.nextSeq++);
  }

  /** Consume the insertion sequence number a push made now would get (for a key held outside the heap). */
  takeSeq(): number {
    return this.nextSeq++;
  }

  /** How many times the heap changed so far (see `changes`). */
  get version(): number {
    return this.changes;
  }

  /** The sequence number of a queued agent's key. */
  seqOf(agent: number): number {
    return this.seq[agent]!;
  }

  /** Insert (or move) the agent with a key whose sequence number was taken earlier with takeSeq(). */
  pushKeyed(agent: number, t: number, seq: number): void {
    this.ensure(agent + 1);
    this.changes++;
    const p = this.pos[agent]!;
    this.time[agent] = t;
    this.seq[agent] = seq;
    if (p >= 0) {
      this.siftUp(p);
      this.siftDown(this.pos[agent]!);
      return;
    }
    const i = this.n++;
    this.heap[i] = agent;
    this.pos[agent] = i;
    this.siftUp(i);
  }

  pop(): number {
    if (this.n === 0) return -1;
    const top = this.heap[0]!;
    this.removeAt(0);
    return top;
  }

  remove(agent: number): void {
    if (!this.has(agent)) return;
    this.removeAt(this.pos[agent]!);
  }

  private removeAt(i: number): void {
    const agent = this.heap[i]!;
    this.pos[agent] = -1;
    this.changes++;
    const last = --this.n;
    if (i === last) return;
    const moved = this.heap[last]!;
    this.heap[i] = moved;
    this.pos[moved] = i;
    this.siftUp(i);
    this.siftDown(this.pos[moved]!);
  }

  private less(a: number, b: number): boolean {
    const ta = this.time[a]!;
    const tb = this.time[b]!;
    return ta < tb || (ta === tb && this.seq[a]! < this.seq[b]!);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const agent = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pa = heap[parent]!;
      if (!this.less(agent, pa)) break;
      heap[i] = pa;
      this.pos[pa] = i;
      i = parent;
    }
    heap[i] = agent;
    this.pos[agent] = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const agent = heap[i]!;
    const n = this.n;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(heap[r]!, heap[l]!) ? r : l;
      const ca = heap[c]!;
      if (!this.less(ca, agent)) break;
      heap[i] = ca;
      this.pos[ca] = i;
      i = c;
    }
    heap[i] = agent;
    this.pos[agent] = i;
  }

  private ensure(agents: number): void {
    if (agents <= this.pos.length && this.n < this.heap.length) return;
    const cap = Math.max(agents, this.heap.length * 2);
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.heap = grow(this.heap, (k) => new Int32Array(k));
    this.time = grow(this.time, (k) => new Float64Array(k));
    this.seq = grow(this.seq, (k) => new Float64Array(k));
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.pos);
    this.pos = pos;
  }
}
