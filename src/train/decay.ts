/**
 * Which parameters AdamW decays: the official parameter groups
 * (msn_train.init_opt) put every tensor that is not 1-D and whose name holds
 * neither 'bias' nor 'bn' in the decayed group. The optimizer's rule
 * (train/optimizer.ts re-exports it), in a module of its own with no tfjs:
 * the checkpoint importer (interop/import-msn.ts, an inference entry) needs
 * the same grouping to name the moments of an official optimizer state, and
 * must not load AdamW for it.
 */

/** Official decay rule: not 1-D and the name contains neither 'bias' nor 'bn'. `shape` is the torch shape. */
export function isDecayed(name: string, shape: number[]): boolean {
  return shape.length > 1 && !name.includes('bias') && !name.includes('bn');
}
