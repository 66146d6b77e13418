/** A broken invariant inside the model itself (never an ABI failure: those are ErrnoError). */
export class ModelError extends Error {
  override name = 'ModelError';
}
