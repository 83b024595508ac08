/**
 * Models shipped inside the msn-web package (models/<name>/), named instead
 * of located: `createMsn({ model: 'msn-mnist-micro' })`. Browser-safe: in
 * Node the engine finds the folder from the installed package
 * (model-loader-node.ts); in browsers the worker bundle names every file with
 * a literal `new URL(..., import.meta.url)` (workers/msn.worker.ts), so a
 * bundler emits them and renames them as it likes (hence a URL per file).
 */
export const SHIPPED_MODELS = ['msn-mnist-micro'] as const;
export type ShippedModelName = (typeof SHIPPED_MODELS)[number];

/** Each file of a shipped model (model.json and its shards) by file name, as URLs. */
export interface ShippedModelUrls {
  manifest: string;
  /** Shard file name (as model.json lists it) -> URL. */
  files: Record<string, string>;
}

export function isShippedModelName(s: unknown): s is ShippedModelName {
  return typeof s === 'string' && (SHIPPED_MODELS as readonly string[]).includes(s);
}
