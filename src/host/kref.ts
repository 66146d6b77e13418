/**
 * Reference counts (include/linux/kref.h, refcount_t) and the per-kernel registry of live refcounted objects.
 *
 * Every modelled kernel object whose lifetime is governed by references (struct file, eventfd_ctx, and later the
 * VFIO device, the KVM VM...) extends KObject: it registers itself with the kernel's RefTracker when created and
 * unregisters when freed, so after teardown `tracker.leaks()` names whatever is still alive. A freed object keeps a
 * `freed` flag; `checkAlive()` turns any later use into a UseAfterFreeError('use-after-free: ...') — the model's KASAN.
 */
import { ModelError, UseAfterFreeError } from '../sim/errors.js';

/**
 * struct kref: starts at 1 (kref_init), like refcount_t it refuses to go from 0 to 1 or below 0. Embedded in the object
 * it counts, as the kernel embeds struct kref (KObject extends it): one object fewer per refcounted object for the
 * checker's state key and copies.
 */
export class Kref {
  private n = 1;

  get refs(): number {
    return this.n;
  }

  /** What error reports name. */
  protected krefName(): string {
    return 'kref';
  }

  /** kref_get. Incrementing a zero count is the refcount_t "addition on 0; use-after-free" warning. */
  krefGet(): void {
    if (this.n <= 0) throw new UseAfterFreeError(`use-after-free: kref_get on ${this.krefName()} whose count is 0`);
    this.n++;
  }

  /** kref_get_unless_zero. */
  krefGetUnlessZero(): boolean {
    if (this.n <= 0) return false;
    this.n++;
    return true;
  }

  /** kref_put: drops one reference; on the last one calls `release` (if given) and returns true. */
  krefPut(release?: () => void): boolean {
    if (this.n <= 0) throw new ModelError(`refcount underflow: kref_put on ${this.krefName()} whose count is 0`);
    this.n--;
    if (this.n > 0) return false;
    if (release !== undefined) release();
    return true;
  }
}

/** What the tracker needs to know about a live object. */
export interface Tracked {
  readonly kind: string;
  readonly name: string;
  readonly refs: number;
}

/**
 * The registry of live refcounted objects of one kernel. Objects are listed in creation order (a Map keyed by a
 * monotonically increasing id), so reports are deterministic.
 */
export class RefTracker {
  private readonly live = new Map<number, Tracked>();
  private nextId = 1;
  /** How many objects were ever tracked, per kind (for tests and statistics). */
  readonly created = new Map<string, number>();

  track(o: Tracked): number {
    const id = this.nextId++;
    this.live.set(id, o);
    this.created.set(o.kind, (this.created.get(o.kind) ?? 0) + 1);
    return id;
  }

  untrack(id: number): void {
    if (!this.live.delete(id)) throw new ModelError(`ref tracker: object #${id} freed twice or never tracked`);
  }

  /** Live objects, oldest first, optionally of one kind. */
  list(kind?: string): Tracked[] {
    const out: Tracked[] = [];
    for (const o of this.live.values()) if (kind === undefined || o.kind === kind) out.push(o);
    return out;
  }

  count(kind?: string): number {
    if (kind === undefined) return this.live.size;
    let n = 0;
    for (const o of this.live.values()) if (o.kind === kind) n++;
    return n;
  }

  /** One line per live object ("eventfd_ctx [eventfd] refs=1"): after a full teardown this should be empty. */
  leaks(kind?: string): string[] {
    return this.list(kind).map((o) => `${o.kind} ${o.name} refs=${o.refs}`);
  }
}

/**
 * Base of refcounted kernel objects. `get()`/`put()` are kref_get/kref_put; when the count drops to zero `lastPut()`
 * runs — by default it frees the object at once (`markFreed()`); a struct file overrides it to defer __fput.
 */
export class KObject extends Kref implements Tracked {
  freed = false;
  private readonly trackId: number;

  constructor(
    readonly tracker: RefTracker | null,
    readonly kind: string,
    readonly name: string,
  ) {
    super();
    this.trackId = tracker === null ? 0 : tracker.track(this);
  }

  protected override krefName(): string {
    return `${this.kind} ${this.name}`;
  }

  /** Any use of a freed object is a model bug (the kernel's use-after-free). */
  checkAlive(what: string): void {
    if (this.freed) throw new UseAfterFreeError(`use-after-free: ${what} on freed ${this.kind} ${this.name}`);
  }

  get(): this {
    this.checkAlive('get');
    this.krefGet();
    return this;
  }

  /** Drops one reference; returns true if it was the last one (lastPut() has run). */
  put(): boolean {
    this.checkAlive('put');
    if (!this.krefPut()) return false;
    this.lastPut();
    return true;
  }

  /** Called when the count reaches zero. Default: free now. */
  protected lastPut(): void {
    this.markFreed();
  }

  /** The object's memory is gone: unregister it; later uses fail checkAlive. */
  markFreed(): void {
    if (this.freed) throw new UseAfterFreeError(`double free of ${this.kind} ${this.name}`);
    this.freed = true;
    if (this.tracker !== null) this.tracker.untrack(this.trackId);
  }
}
