import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { crc32, openZip } from '../../src/interop/zip.js';
import { writeZip, err } from './builders.js';

const fixture = new Uint8Array(readFileSync(new URL('../fixtures/msn/released_layout.pth.tar', import.meta.url)));
const set32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
const set16 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint16(at, v, true);

describe('openZip', () => {
  it('lists a torch.save archive (zip64 end record, data descriptors, aligned data)', () => {
    const z = openZip(fixture);
    expect(z.entries).toHaveLength(49);
    expect(z.entries[0].name).toBe('released_layout.pth/data.pkl');
    expect(z.entries[0].size).toBe(4461);
    expect(z.get('released_layout.pth/version')?.size).toBe(2);
    for (const e of z.entries.slice(1)) expect(e.offset % 64, e.name).toBe(0); // torch aligns storages
    expect(new TextDecoder().decode(z.read(z.get('released_layout.pth/version')!))).toBe('3\n');
  });

  it('crc32 matches the IEEE check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('detects corrupt data through the CRC, unless told not to check', () => {
    const b = fixture.slice();
    const e = openZip(b).get('released_layout.pth/data/1')!;
    b[e.offset + 5] ^= 1;
    const z = openZip(b);
    expect(err(() => z.read(z.get(e.name)!))).toMatch(/MsnFormatError: ZIP: CRC-32 mismatch/);
    expect(z.read(z.get(e.name)!, { verifyCrc: false })[5]).toBe(b[e.offset + 5]);
  });

  it('round-trips both writer layouts', () => {
    const files = [
      { name: 'a/b', data: new Uint8Array([1, 2, 3]) },
      { name: 'é', data: new Uint8Array(0) },
    ];
    for (const torchStyle of [true, false]) {
      const z = openZip(writeZip(files, torchStyle));
      expect(z.entries.map((e) => e.name)).toEqual(['a/b', 'é']);
      expect(Array.from(z.read(z.entries[0]))).toEqual([1, 2, 3]);
      expect(z.read(z.entries[1]).length).toBe(0);
    }
  });

  it('refuses lying headers', () => {
    const plain = writeZip([
      { name: 'a', data: new Uint8Array(100) },
      { name: 'b', data: new Uint8Array(100) },
    ], false);
    const cd = plain.length - 22 - 2 * (46 + 1);
    const mutate = (fn: (b: Uint8Array) => void) => {
      const b = plain.slice();
      fn(b);
      return err(() => openZip(b));
    };
    // Zip-bomb style: a stored entry claiming 4 GiB uncompressed.
    expect(mutate((b) => set32(b, cd + 24, 0xfffffff0))).toMatch(/different compressed .* and uncompressed/);
    expect(mutate((b) => (set32(b, cd + 20, 0x7ffffff0), set32(b, cd + 24, 0x7ffffff0)))).toMatch(/runs into the central directory/);
    expect(mutate((b) => (set32(b, cd + 47 + 42, 0), b.set([0x61], cd + 47 + 46)))).toMatch(/duplicate entry name "a"/);
    expect(mutate((b) => set32(b, cd + 47 + 42, 0))).toMatch(/local header name differs/);
    expect(mutate((b) => (set16(b, plain.length - 12, 60000), set16(b, plain.length - 14, 60000)))).toMatch(/entries cannot fit/);
    expect(mutate((b) => set16(b, plain.length - 14, 60000))).toMatch(/entry counts disagree/);
    expect(mutate((b) => set32(b, plain.length - 6, 0xffffffff))).toMatch(/zip64 record, but none/);
    expect(mutate((b) => set32(b, plain.length - 6, 0xfffffff0))).toMatch(/overruns the end record/);
    expect(mutate((b) => set32(b, plain.length - 6, cd + 1))).toMatch(/overruns|signature/);
    expect(mutate((b) => set16(b, cd + 28, 0xffff))).toMatch(/overruns|name/);
    expect(mutate((b) => set32(b, 14, 1))).toMatch(/inconsistent/); // local CRC differs
    expect(mutate((b) => set16(b, cd + 8, 1))).toMatch(/encrypted/);
    expect(mutate((b) => set32(b, 0, 0))).toMatch(/local-header signature/);
    expect(mutate((b) => set16(b, plain.length - 2, 1))).toMatch(/no end-of-central-directory/); // comment length lies
    expect(err(() => openZip(plain, { maxEntries: 1 }))).toMatch(/limit is 1/);

    // Overlapping entries (the "overlapping files" zip bomb): entry b's directory record points at a
    // valid copy of its local header placed inside entry a's data.
    const x = new Uint8Array([9, 8, 7]);
    const inner = writeZip([{ name: 'b', data: x }], false).subarray(0, 31 + x.length);
    const both = writeZip([{ name: 'a', data: inner }, { name: 'b', data: x }], false);
    const cdB = both.length - 22 - 47;
    expect(openZip(both).entries).toHaveLength(2);
    set32(both, cdB + 42, 31);
    expect(err(() => openZip(both))).toMatch(/MsnFormatError: ZIP: entries overlap/);
  });
});
