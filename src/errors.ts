/**
 * Typed errors. The kind of an error lives in `name`, because comlink (and
 * structured clone) keep only `name`, `message` and `stack` across a worker
 * boundary: branch on `err.name === 'MsnShapeError'`, not on `instanceof`.
 * Messages say what happened, what was expected, and what to do.
 */
export class MsnError extends Error {
  override name = 'MsnError';
}
/** A tensor or array has the wrong rank, size or channel count. */
export class MsnShapeError extends MsnError {
  override name = 'MsnShapeError';
}
/** A value is out of range, not finite, or of the wrong type. */
export class MsnValueError extends MsnError {
  override name = 'MsnValueError';
}
/** A configuration or option object is invalid. */
export class MsnConfigError extends MsnError {
  override name = 'MsnConfigError';
}
/** A file (checkpoint, model, dataset) is malformed, truncated or unsafe. */
export class MsnFormatError extends MsnError {
  override name = 'MsnFormatError';
}
/** A backend could not be initialised. */
export class MsnBackendError extends MsnError {
  override name = 'MsnBackendError';
}
/** An operation was cancelled through an AbortSignal. */
export class MsnAbortError extends MsnError {
  override name = 'AbortError';
}
/** Training produced non-finite values too many times in a row. */
export class MsnNumericalError extends MsnError {
  override name = 'MsnNumericalError';
}
