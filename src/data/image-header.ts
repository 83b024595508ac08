/**
 * Width and height of a PNG or JPEG from its header, without decoding it.
 * A 400 KB PNG can declare 20000 x 20000 pixels (1.6 GB of RGBA once
 * decoded); reading the declared size first lets the caller refuse it before
 * the decoder allocates anything. Browser-safe (no Node imports).
 */
import { MsnFormatError } from '../errors.js';

export interface ImageSize {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The declared size of a PNG or JPEG (told apart by their magic bytes); MsnFormatError for anything else. */
export function readImageSize(bytes: Uint8Array, name = 'the image'): ImageSize {
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return pngSize(bytes, name);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return jpegSize(bytes, name);
  throw new MsnFormatError(`${name} is neither a PNG nor a JPEG (unknown first bytes); convert it to PNG or JPEG, or remove it.`);
}

/** PNG: the first chunk must be IHDR, whose data starts with big-endian width and height. */
function pngSize(b: Uint8Array, name: string): ImageSize {
  const ihdr = b[12] === 0x49 && b[13] === 0x48 && b[14] === 0x44 && b[15] === 0x52;
  if (b.length < 24 || !ihdr) throw new MsnFormatError(`${name}: the PNG has no IHDR header (truncated or damaged); replace the file.`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { format: 'png', width: v.getUint32(16, false), height: v.getUint32(20, false) };
}

/** Start-of-frame markers: SOF0-3, 5-7, 9-11, 13-15 (C4 = DHT, C8 = JPG, CC = DAC are not frames). */
function isStartOfFrame(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/** JPEG: walk the marker segments up to the first start-of-frame (height, then width, big-endian). */
function jpegSize(b: Uint8Array, name: string): ImageSize {
  const damaged = (what: string): never => {
    throw new MsnFormatError(`${name}: ${what} in the JPEG header (truncated or damaged); replace the file.`);
  };
  let p = 2;
  while (p < b.length) {
    if (b[p] !== 0xff) damaged(`no marker at byte ${p}`);
    while (p < b.length && b[p] === 0xff) p++; // fill bytes
    const marker = b[p++];
    if (marker === undefined) break;
    // Markers without a length field.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    if (marker === 0xd9 || marker === 0xda) damaged('image data before any frame header');
    if (p + 2 > b.length) break;
    const length = (b[p] << 8) | b[p + 1];
    if (length < 2) damaged(`a segment of length ${length}`);
    if (isStartOfFrame(marker)) {
      if (p + 7 > b.length) break;
      const height = (b[p + 3] << 8) | b[p + 4];
      const width = (b[p + 5] << 8) | b[p + 6];
      return { format: 'jpeg', width, height };
    }
    p += length;
  }
  return damaged('no frame header');
}
