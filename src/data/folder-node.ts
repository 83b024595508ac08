/**
 * Node: training images from a folder. An MNIST-layout IDX folder gives its
 * train split (gray, 1 channel); otherwise every .png/.jpg/.jpeg in the
 * folder is decoded (pngjs, jpeg-js: pure JS, nothing executed from the
 * files) into RGB. All images must share one size.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { MsnConfigError, MsnFormatError, MsnShapeError, MsnValueError } from '../errors.js';
import { ImageDataset, datasetFromPixels } from '../pretrain/source.js';
import { readIdxFolder } from './idx-node.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);
const MAX_PIXELS = 4096 * 4096;

function looksLikeIdx(dir: string): boolean {
  return readdirSync(dir).some((f) => /^train[-.]images[-.]idx3[-.]ubyte(\.gz)?$/i.test(f));
}

/** Decodes one PNG/JPEG to RGB bytes. */
export function decodeImageFile(path: string): { width: number; height: number; rgb: Uint8Array } {
  const bytes = readFileSync(path);
  let rgba: Uint8Array;
  let width: number;
  let height: number;
  try {
    if (extname(path).toLowerCase() === '.png') {
      const png = PNG.sync.read(bytes);
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
    throw new MsnFormatError(`Image '${path}' has an invalid size ${width}x${height}.`);
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
