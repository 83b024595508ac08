/**
 * Node: the installed tfjs-backend-wasm dist folder (the emscripten glue
 * reads the .wasm files with fs, so a plain path works and nothing is
 * fetched). Browser builds replace this module with node-only.browser.ts.
 */
export async function nodeWasmDirectory(): Promise<string | undefined> {
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!isNode) return undefined;
  const { createRequire } = await import('node:module');
  const path = await import('node:path');
  const require = createRequire(import.meta.url);
  const main = require.resolve('@tensorflow/tfjs-backend-wasm');
  return path.dirname(main) + path.sep;
}
