/** A broken invariant inside the model itself (never an ABI failure: those are ErrnoError). */
export class ModelError extends Error {
  override name = 'ModelError';
}

/** A use of a freed kernel object or a second free (host/kref.ts, the model's KASAN); reported as a ModelError. */
export class UseAfterFreeError extends ModelError {}
