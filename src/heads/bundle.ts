/**
 * Saving and loading heads: a bundle (see bundle-format.ts) as an object, its
 * JSON text, or bytes.
 *
 * Bytes are a tensor container (io/tensor-container.ts) of kind
 * 'msn-web/head', the same format as checkpoints: the bundle without its
 * arrays is the container's `meta`, and each array is a float32 tensor of
 * the same name. The container brings the checksums, the size checks and the
 * typed errors. Heads saved before that ("MSNHEAD1" bytes) still load,
 * through bundle-v1.ts, and predict exactly as they did.
 *
 * Float32 values survive JSON exactly (a float32 widened to a double prints
 * and parses back to the same double), so all forms predict identically.
 */
import { MsnFormatError } from '../errors.js';
import { CONTAINER_MAGIC, decodeContainer, encodeContainer, type ContainerTensor } from '../io/tensor-container.js';
import {
  type BundleArray,
  HEAD_BUNDLE_FORMAT,
  type HeadBundle,
  type LoadHeadOptions,
  checkBundleFingerprint,
  checkFields,
  fail,
  validateBundle,
} from './bundle-format.js';
import { V1_MAGIC, bundleFromV1Bytes } from './bundle-v1.js';
import type { Head } from './head.js';
import { type AnyHead, HEAD_REGISTRY } from './registry.js';
import { crc32 } from '../util/crc32.js';

/** CRC-32 (IEEE, as in zip/PNG), re-exported here where callers found it when bundles had their own format. */
export { crc32 };
export type { AnyHead };
export type { BundleArray, HeadBundle, LoadHeadOptions };
export { HEAD_BUNDLE_FORMAT, HEAD_BUNDLE_VERSION, HEAD_LIMITS, checkBundleFingerprint, validateBundle } from './bundle-format.js';

/** The container kind of saved heads. */
export const HEAD_CONTAINER_KIND = HEAD_BUNDLE_FORMAT;

/** The bundle of a head (a fresh object; safe to JSON.stringify or mutate). */
export function saveHead(head: Head): HeadBundle {
  return head.toBundle();
}

/**
 * Rebuilds a head from a bundle object, its JSON text, or `bundleToBytes`
 * output (either byte format). Throws MsnFormatError on anything malformed
 * and MsnConfigError when `expectedFingerprint` is given and differs from the
 * bundle's.
 */
export function loadHead(source: HeadBundle | Uint8Array | string, options: LoadHeadOptions = {}): AnyHead {
  const bundle = readBundle(source, options);
  checkBundleFingerprint(bundle, options.expectedFingerprint);
  return HEAD_REGISTRY[bundle.kind].fromBundle(bundle);
}

/**
 * Parses and validates a bundle from any of its three forms. With
 * `expectedFingerprint`, bytes from another encoder are refused
 * (MsnConfigError) before their arrays are decoded.
 */
export function readBundle(source: HeadBundle | Uint8Array | string, options: LoadHeadOptions = {}): HeadBundle {
  if (source instanceof Uint8Array) return bundleFromBytes(source, options);
  if (typeof source === 'string') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(source);
    } catch (err) {
      fail(`not valid JSON (${(err as Error).message}).`);
    }
    return validateBundle(parsed);
  }
  return validateBundle(source);
}

/** Packs a bundle into a tensor container of kind 'msn-web/head'. */
export function bundleToBytes(input: HeadBundle): Uint8Array {
  const { arrays, ...meta } = validateBundle(input);
  const tensors: Record<string, ContainerTensor> = {};
  for (const [name, array] of Object.entries(arrays)) {
    Object.defineProperty(tensors, name, {
      value: { shape: [...array.shape], data: Float32Array.from(array.data) },
      enumerable: true,
    });
  }
  return encodeContainer({ kind: HEAD_CONTAINER_KIND, meta, tensors });
}

/**
 * Inverse of `bundleToBytes`, and reader of heads saved in the first format
 * ("MSNHEAD1"). Throws MsnFormatError on any damage. The fields, their limits
 * and the fingerprint (`expectedFingerprint`, MsnConfigError) are checked
 * before any array is copied out.
 */
export function bundleFromBytes(bytes: Uint8Array, options: LoadHeadOptions = {}): HeadBundle {
  if (!(bytes instanceof Uint8Array)) fail('expected a Uint8Array.');
  if (!startsWith(bytes, CONTAINER_MAGIC)) {
    if (startsWith(bytes, V1_MAGIC) || bytes.length < V1_MAGIC.length) return bundleFromV1Bytes(bytes, options);
    fail(`bytes start with neither '${CONTAINER_MAGIC}' nor '${V1_MAGIC}' (not a head saved by msn-web, or its start is damaged).`);
  }
  let contents: ReturnType<typeof decodeContainer>;
  try {
    contents = decodeContainer(bytes, {
      expectedKind: HEAD_CONTAINER_KIND,
      checkMeta: (meta) => {
        checkFields(meta);
        checkBundleFingerprint(meta as HeadBundle, options.expectedFingerprint);
      },
    });
  } catch (err) {
    if (err instanceof MsnFormatError && !err.message.startsWith('Invalid head bundle')) fail(headReason(err.message));
    throw err;
  }
  const arrays: Record<string, BundleArray> = {};
  for (const [name, tensor] of Object.entries(contents.tensors)) {
    // defineProperty: a name such as "__proto__" stays an own entry, to be refused by validateBundle.
    Object.defineProperty(arrays, name, {
      value: { shape: tensor.shape, data: Array.from(tensor.data) },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return validateBundle({ ...(contents.meta as object), arrays });
}

/** The container's reason, told about a head: its advice speaks of checkpoints. */
function headReason(containerMessage: string): string {
  return containerMessage
    .replace(/^Checkpoint container: /, '')
    .replace(/restore the previous checkpoint|restore an earlier one/g, 'load an intact copy or refit the head');
}

function startsWith(bytes: Uint8Array, magic: string): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic.charCodeAt(i)) return false;
  return true;
}
