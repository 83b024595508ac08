/**
 * IDX files, the format of MNIST and its look-alikes (Fashion-MNIST, KMNIST,
 * EMNIST). Browser-safe: no Node imports. A file is
 *
 *   bytes 0..1   zero
 *   byte  2      element type (0x08 = unsigned byte; the only type MNIST uses)
 *   byte  3      number of dimensions r
 *   4..4+4r      each dimension as a big-endian uint32
 *   then         the elements, row-major, and nothing after them
 *
 * so images are magic 0x00000803 (count x height x width) and labels
 * 0x00000801 (count). Files are often distributed gzipped; `parseIdx` spots
 * the gzip magic (1f 8b) and uses the `gunzip` you pass (Node: see
 * idx-node.ts; browsers: DecompressionStream('gzip') first).
 */
import { MsnFormatError } from '../errors.js';

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export interface IdxArray {
  /** Element type; only 'uint8' is supported. */
  type: 'uint8';
  /** Dimensions, outermost first (e.g. [60000, 28, 28]). */
  dims: number[];
  /** The elements, row-major: a view into the (decompressed) input. */
  data: Uint8Array;
}

export interface IdxImages {
  /** count x height x width pixels, row-major, 0 = background. */
  images: Uint8Array;
  count: number;
  height: number;
  width: number;
}

export interface IdxLabels {
  labels: Uint8Array;
  count: number;
}

/** Images with their labels: one split of an MNIST-layout dataset. */
export interface IdxSplit extends IdxImages {
  labels: Uint8Array;
}

export interface ParseIdxOptions {
  /** Decompresses gzip bytes; needed only for gzipped input. */
  gunzip?: (bytes: Uint8Array) => Uint8Array;
  /** Name used in error messages (e.g. the file path). */
  name?: string;
}

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parses one IDX file (uint8 elements, any number of dimensions). */
export function parseIdx(bytes: Uint8Array, options: ParseIdxOptions = {}): IdxArray {
  const name = options.name ?? 'IDX data';
  if (!(bytes instanceof Uint8Array)) throw new MsnFormatError(`${name}: expected a Uint8Array of file bytes.`);
  if (isGzip(bytes)) {
    if (!options.gunzip) {
      throw new MsnFormatError(
        `${name} is gzip-compressed; pass options.gunzip (in Node, readIdxFile does this), ` +
          `or decompress it first (in browsers with DecompressionStream('gzip')).`,
      );
    }
    bytes = options.gunzip(bytes);
    if (isGzip(bytes)) throw new MsnFormatError(`${name} is still gzip data after one gunzip (double-compressed?).`);
  }
  if (bytes.length < 4) throw new MsnFormatError(`${name} is ${bytes.length} bytes long; an IDX header needs at least 4.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new MsnFormatError(`${name} does not start with an IDX magic number (got 0x${hex(magic)}); is it an IDX file?`);
  }
  if (bytes[2] !== 0x08) {
    throw new MsnFormatError(
      `${name} has IDX element type 0x${bytes[2].toString(16).padStart(2, '0')}; only unsigned bytes (0x08) are supported.`,
    );
  }
  const rank = bytes[3];
  if (rank < 1) throw new MsnFormatError(`${name} declares 0 dimensions.`);
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw new MsnFormatError(`${name} is truncated: ${rank} dimensions need a ${headerLength}-byte header, file has ${bytes.length} bytes.`);
  }
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < rank; i++) {
    const dim = view.getUint32(4 + 4 * i, false);
    dims.push(dim);
    size *= dim;
  }
  const expected = headerLength + size;
  if (bytes.length !== expected) {
    throw new MsnFormatError(
      `${name} has ${bytes.length} bytes but its header [${dims.join(' x ')}] implies exactly ${expected} ` +
        `(${bytes.length < expected ? 'truncated' : 'trailing bytes'}).`,
    );
  }
  return { type: 'uint8', dims, data: bytes.subarray(headerLength) };
}

/** Parses an images file: magic 0x00000803, count x height x width. */
export function parseIdxImages(bytes: Uint8Array, options: ParseIdxOptions = {}): IdxImages {
  const name = options.name ?? 'IDX images';
  const idx = parseIdx(bytes, { ...options, name });
  if (idx.dims.length !== 3) {
    throw new MsnFormatError(
      `${name} has magic 0x${hex(0x800 | idx.dims.length)} (${idx.dims.length} dimensions); ` +
        `an images file has magic 0x${hex(IDX_IMAGES_MAGIC)} (count x height x width). Labels and images swapped?`,
    );
  }
  const [count, height, width] = idx.dims;
  if (height < 1 || width < 1) throw new MsnFormatError(`${name} has empty images (${height} x ${width}).`);
  return { images: idx.data, count, height, width };
}

/** Parses a labels file: magic 0x00000801, count. */
export function parseIdxLabels(bytes: Uint8Array, options: ParseIdxOptions = {}): IdxLabels {
  const name = options.name ?? 'IDX labels';
  const idx = parseIdx(bytes, { ...options, name });
  if (idx.dims.length !== 1) {
    throw new MsnFormatError(
      `${name} has magic 0x${hex(0x800 | idx.dims.length)} (${idx.dims.length} dimensions); ` +
        `a labels file has magic 0x${hex(IDX_LABELS_MAGIC)} (count). Labels and images swapped?`,
    );
  }
  return { labels: idx.data, count: idx.dims[0] };
}

/** Pairs images with labels, checking that the counts agree. */
export function makeIdxSplit(images: IdxImages, labels: IdxLabels, name = 'split'): IdxSplit {
  if (images.count !== labels.count) {
    throw new MsnFormatError(`${name}: ${images.count} images but ${labels.count} labels; the files do not belong together.`);
  }
  return { ...images, labels: labels.labels };
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
