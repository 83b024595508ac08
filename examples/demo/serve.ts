/**
 * `npm run demo`: after the build, writes the bundled sample digits and serves
 * the demo on 127.0.0.1 (PORT, default 8080) with the browser tests' static
 * server: the page, dist/ and models/ in the package's layout (the worker finds
 * the shipped model at ../../models/ from dist/worker/). Nothing else is served.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer, type StaticServer } from '../../test/browser/server.js';
import { writeSamples } from './samples.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The demo's folders, mounted at the site root as in the repository. */
export function demoMounts(): Record<string, string> {
  return {
    'examples/demo/': `${ROOT}examples/demo`,
    'dist/': `${ROOT}dist`,
    'models/': `${ROOT}models`,
  };
}

/** Writes the sample digits when missing and starts the server; the page is at `url + 'examples/demo/'`. */
export async function startDemoServer(port = 0): Promise<StaticServer> {
  if (!existsSync(`${ROOT}dist/client.js`) || !existsSync(`${ROOT}dist/worker/msn.worker.js`)) {
    throw new Error('dist/ is not built: run `npm run build` first (npm run demo does).');
  }
  if (!existsSync(`${ROOT}examples/demo/samples/samples.json`)) writeSamples(`${ROOT}examples/demo/samples`);
  return startServer({ base: '/', port, extra: demoMounts() });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const server = await startDemoServer(Number(process.env.PORT ?? 8080));
  console.log(`msn-web demo: ${server.url}examples/demo/  (Ctrl-C stops it; ?backend=wasm|webgpu|cpu forces a backend)`);
}
