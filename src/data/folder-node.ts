/**
 * Node: training images from a folder. An MNIST-layout IDX folder gives its
 * train split (gray, 1 channel); otherwise every .png/.jpg/.jpeg in the
 * folder is decoded (pngjs, jpeg-js: pure JS, nothing executed from the
 * files) into RGB. All images must share one size.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { MsnConfigError, MsnFormatError, MsnResourceError, MsnShapeError, MsnValueError } from '../errors.js';
import { ImageDataset, datasetFromPixels } from '../pretrain/source.js';
import { readIdxFolder } from './idx-node.js';
import { readImageSize } from './image-header.js';
import { readFileCappedSync } from './read-capped.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);
/**
 * Limits for one image folder. An image is decoded to RGBA first (4 bytes a
 * pixel), so 4096 x 4096 costs 64 MiB while it is converted; its file can
 * hardly be larger than that uncompressed. The whole folder becomes one RGB
 * array, capped at 2 GiB (MNIST-sized datasets are a few tens of MB).
 */
export const IMAGE_LIMITS = Object.freeze({
  maxPixels: 4096 * 4096,
  maxFileBytes: 128 * 1024 * 1024,
  maxDatasetBytes: 2 * 1024 ** 3,
});
const MAX_PIXELS = IMAGE_LIMITS.maxPixels;

function looksLikeIdx(dir: string): boolean {
  return readdirSync(dir).some((f) => /^train[-.]images[-.]idx3[-.]ubyte(\.gz)?$/i.test(f));
}

/**
 * Decodes one PNG/JPEG to RGB bytes. The declared size is read from the
 * header first and an image over IMAGE_LIMITS.maxPixels is refused
 * (MsnResourceError) before the decoder allocates anything.
 */
export function decodeImageFile(path: string): { width: number; height: number; rgb: Uint8Array } {
  const bytes = readFileCappedSync(path, IMAGE_LIMITS.maxFileBytes, 'a PNG or JPEG image');
  let declared: ReturnType<typeof readImageSize>;
  try {
    declared = readImageSize(bytes, 'the file');
  } catch (e) {
    throw new MsnFormatError(`Could not decode image '${path}': ${(e as Error).message}`);
  }
  if (declared.width * declared.height > MAX_PIXELS) {
    throw new MsnResourceError(
      `Image '${path}' is ${declared.width}x${declared.height} (${((declared.width * declared.height) / 1e6).toFixed(1)} megapixels), ` +
        `over the limit of ${MAX_PIXELS} pixels (4096x4096); resize the image first (pretraining uses the model's image size, e.g. 28 or 224 px).`,
    );
  }
  let rgba: Uint8Array;
  let width: number;
  let height: number;
  try {
    // The decoder follows the bytes, not the file name.
    if (declared.format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = png);
      rgba = png.data;
    } else {
      const img = jpeg.decode(bytes, { useTArray: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 512 });
      ({ width, height } = img);
      rgba = img.data;
    }
  } catch (e) {
    throw new MsnFormatError(`Could not decode image '${path}': ${(e as Error).message}. Remove or replace the file.`);
  }
  if (!(width > 0 && height > 0) || width * height > MAX_PIXELS || rgba.length < width * height * 4) {
    throw new MsnFormatError(`Image '${path}' has an invalid size ${width}x${height}; replace the file.`);
  }
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) rgb.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
  return { width, height, rgb };
}

/** The images of a folder as a dataset (IDX train split or decoded PNG/JPEG files). */
export async function loadImageFolder(dir: string): Promise<ImageDataset> {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new MsnConfigError(`Data folder '${dir}' does not exist.`);
  }
  if (!st.isDirectory()) throw new MsnConfigError(`'${dir}' is not a folder; pass an IDX folder or a folder of images.`);
  if (looksLikeIdx(dir)) {
    const { train } = readIdxFolder(dir);
    return datasetFromPixels(train.images, train.count, train.height, train.width, 1);
  }
  const files = readdirSync(dir).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new MsnValueError(`No .png/.jpg/.jpeg images and no IDX files in '${dir}'.`);
  const first = decodeImageFile(join(dir, files[0]));
  const per = first.width * first.height * 3;
  if (files.length * per > IMAGE_LIMITS.maxDatasetBytes) {
    throw new MsnResourceError(
      `${files.length} images of ${first.width}x${first.height} need ${files.length * per} bytes, over the limit of ${IMAGE_LIMITS.maxDatasetBytes} ` +
        `for one image folder; resize the images (to the model's image size) or use fewer of them.`,
    );
  }
  const pixels = new Uint8Array(files.length * per);
  pixels.set(first.rgb, 0);
  for (let i = 1; i < files.length; i++) {
    const im = decodeImageFile(join(dir, files[i]));
    if (im.width !== first.width || im.height !== first.height) {
      throw new MsnShapeError(
        `Mixed image sizes: '${files[0]}' is ${first.width}x${first.height} but '${files[i]}' is ${im.width}x${im.height}. Resize the images to one size first.`,
      );
    }
    pixels.set(im.rgb, i * per);
  }
  return datasetFromPixels(pixels, files.length, first.height, first.width, 3);
}
