/**
 * Image folders: the declared size is read from the PNG/JPEG header and
 * checked before decoding (the hostile 20000 x 20000 files are in
 * test/io/hostile.test.ts, measured in a child process); ordinary images
 * still decode, and files that are not images fail with typed errors.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { afterAll, describe, expect, it } from 'vitest';
import { IMAGE_LIMITS, decodeImageFile, loadImageFolder } from '../../src/data/folder-node.js';
import { readImageSize } from '../../src/data/image-header.js';

const tmp = mkdtempSync(join(tmpdir(), 'msn-images-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function png(width: number, height: number): Uint8Array {
  const img = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) img.data.set([i % 256, 10, 200, 255], i * 4);
  return new Uint8Array(PNG.sync.write(img));
}
function jpg(width: number, height: number): Uint8Array {
  const data = Buffer.alloc(width * height * 4, 128);
  return new Uint8Array(jpeg.encode({ data, width, height }, 90).data);
}
const errorOf = async (fn: () => unknown): Promise<Error> => {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

describe('image headers', () => {
  it('reads the declared size of PNG and JPEG files without decoding', () => {
    expect(readImageSize(png(7, 5))).toEqual({ format: 'png', width: 7, height: 5 });
    expect(readImageSize(jpg(9, 4))).toEqual({ format: 'jpeg', width: 9, height: 4 });
  });

  it('refuses other bytes and damaged headers with MsnFormatError', () => {
    for (const bytes of [new Uint8Array(0), new TextEncoder().encode('hello'), png(4, 4).subarray(0, 20), jpg(4, 4).subarray(0, 4), Uint8Array.of(0xff, 0xd8, 0xff, 0xda, 0, 2)]) {
      let name = 'none';
      try {
        readImageSize(bytes);
      } catch (e) {
        name = (e as Error).name;
      }
      expect(name).toBe('MsnFormatError');
    }
  });
});

describe('loadImageFolder / decodeImageFile', () => {
  it('decodes ordinary PNG and JPEG files to RGB', async () => {
    const dir = mkdtempSync(join(tmp, 'ok-'));
    writeFileSync(join(dir, 'a.png'), png(6, 6));
    writeFileSync(join(dir, 'b.jpg'), jpg(6, 6));
    const one = decodeImageFile(join(dir, 'a.png'));
    expect([one.width, one.height, one.rgb.length]).toEqual([6, 6, 108]);
    expect(Array.from(one.rgb.subarray(0, 6))).toEqual([0, 10, 200, 1, 10, 200]);
    const ds = await loadImageFolder(dir);
    expect(ds.count).toBe(2);
  });

  it('refuses an image over the pixel limit from its header, saying to resize it', async () => {
    expect(IMAGE_LIMITS.maxPixels).toBe(4096 * 4096);
    const dir = mkdtempSync(join(tmp, 'big-'));
    const bytes = png(8, 8);
    new DataView(bytes.buffer).setUint32(16, 5000, false); // width 5000 in IHDR (decoding would fail its CRC; the size check comes first)
    new DataView(bytes.buffer).setUint32(20, 5000, false);
    writeFileSync(join(dir, 'a.png'), bytes);
    const e = await errorOf(() => loadImageFolder(dir));
    expect(e.name).toBe('MsnResourceError');
    expect(e.message).toMatch(/5000x5000 .*resize the image first/);
  });

  it('refuses devices and files with an image name that are not images', async () => {
    const dir = mkdtempSync(join(tmp, 'dev-'));
    if (process.platform !== 'win32') {
      symlinkSync('/dev/zero', join(dir, 'a.png'));
      expect((await errorOf(() => loadImageFolder(dir))).name).toBe('MsnConfigError');
    }
    const dir2 = mkdtempSync(join(tmp, 'text-'));
    writeFileSync(join(dir2, 'a.jpg'), 'not an image');
    const e = await errorOf(() => loadImageFolder(dir2));
    expect(e.name).toBe('MsnFormatError');
    expect(e.message).toMatch(/neither a PNG nor a JPEG/);
  });
});
