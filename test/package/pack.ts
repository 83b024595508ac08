/**
 * The package as users get it: `npm pack` of this repository, and npm's
 * layout of its install into an app, offline (the tarball extracted into
 * node_modules/msn-web, its dependencies linked from this repository's
 * node_modules). Shared by the tests that consume the tarball (the Vite app,
 * the Node/TypeScript consumer).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `npm pack` into `dest`; returns the tarball's path. Needs a built dist/ (npm test builds it first). */
export async function packTarball(dest: string): Promise<string> {
  if (!existsSync(join(ROOT, 'dist/index.js')) || !existsSync(join(ROOT, 'dist/worker/msn.worker.js'))) {
    throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
  }
  const packed = await run('npm', ['pack', '--pack-destination', dest, '--ignore-scripts', '--json'], { cwd: ROOT, maxBuffer: 64 << 20 });
  return join(dest, (JSON.parse(packed.stdout) as { filename: string }[])[0].filename);
}

/**
 * npm's layout of the tarball's install into `app`, offline: extract it,
 * link each of its dependencies (and `extra` packages, e.g. typescript) from
 * this repository's node_modules.
 */
export async function installOffline(app: string, tgz: string, extra: string[] = []): Promise<void> {
  const pkgDir = join(app, 'node_modules/msn-web');
  mkdirSync(pkgDir, { recursive: true });
  await run('tar', ['-xzf', tgz, '-C', pkgDir, '--strip-components=1']);
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of [...Object.keys(pkg.dependencies ?? {}), ...extra]) {
    const target = join(ROOT, 'node_modules', dep);
    if (!existsSync(target)) throw new Error(`msn-web depends on ${dep}, which is not installed in ${ROOT}/node_modules.`);
    const link = join(app, 'node_modules', dep);
    if (existsSync(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
}
