/**
 * The safetensors reader and writer (src/interop/safetensors.ts): round trip,
 * the float dtypes a Hugging Face file may use, and corrupt files. Contract
 * for hostile input, as for the zip and pickle readers: every malformed file
 * throws an MsnFormatError that says what is wrong, never a RangeError or
 * TypeError, and never allocates what the header merely claims.
 */
import { describe, expect, it } from 'vitest';
import { MAX_HEADER_BYTES, readSafetensors, writeSafetensors } from '../../src/interop/safetensors.js';
import { float32ToFloat16 } from '../../src/io/model-format.js';
import { throwsNamed } from '../unit/helpers.js';
import { mulberry32 } from './builders.js';

/** A file from a header object (or raw header text) and data bytes, as a reference writer would lay it out. */
function file(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: bigint): Uint8Array {
  const head = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}
const f32bytes = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
const bad = (bytes: Uint8Array, message: RegExp) => throwsNamed(() => readSafetensors(bytes), 'MsnFormatError', message);

describe('writeSafetensors / readSafetensors', () => {
  it('round-trips float32 tensors, their order and the metadata, with an 8-byte aligned header', () => {
    const a = { name: 'embeddings.cls_token', shape: [1, 1, 3], data: Float32Array.of(1.5, -2, 3e-8) };
    const b = { name: 'layernorm.bias', shape: [2], data: Float32Array.of(Number.MAX_VALUE > 0 ? 3.4e38 : 0, -0) };
    const empty = { name: 'empty', shape: [0, 4], data: new Float32Array(0) };
    const bytes = writeSafetensors([a, b, empty], { format: 'pt' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const back = readSafetensors(bytes);
    expect([...back.tensors.keys()]).toEqual(['embeddings.cls_token', 'layernorm.bias', 'empty']);
    expect(back.metadata).toEqual({ format: 'pt' });
    for (const t of [a, b, empty]) {
      const got = back.tensors.get(t.name)!;
      expect(got.dtype).toBe('F32');
      expect(got.shape).toEqual(t.shape);
      expect(Array.from(got.data!)).toEqual(Array.from(t.data));
    }
    expect(Object.is(back.tensors.get('layernorm.bias')!.data![1], -0)).toBe(true);
  });

  it('reads F16, BF16 and F64 as float32 and lists integer tensors without values', () => {
    const half = float32ToFloat16(Float32Array.of(1, -0.5, 65504, 2 ** -24));
    const bf = Uint16Array.of(0x3f80, 0xc040, 0x7f80); // 1, -3, +Inf
    const f64 = new Uint8Array(Float64Array.of(0.1, -1e300).buffer);
    const i64 = new Uint8Array(16);
    const data = new Uint8Array([...new Uint8Array(half.buffer), ...new Uint8Array(bf.buffer), ...f64, ...i64]);
    const st = readSafetensors(file({
      h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [8, 14] },
      d: { dtype: 'F64', shape: [2], data_offsets: [14, 30] },
      n: { dtype: 'I64', shape: [2], data_offsets: [30, 46] },
    }, data));
    expect(Array.from(st.tensors.get('h')!.data!)).toEqual([1, -0.5, 65504, 2 ** -24]);
    expect(Array.from(st.tensors.get('b')!.data!)).toEqual([1, -3, Infinity]);
    expect(Array.from(st.tensors.get('d')!.data!)).toEqual([Math.fround(0.1), -Infinity]);
    expect(st.tensors.get('n')).toEqual({ dtype: 'I64', shape: [2] });
  });

  it('refuses to write duplicate names or data that does not fit the shape', () => {
    const t = { name: 'x', shape: [2], data: new Float32Array(2) };
    throwsNamed(() => writeSafetensors([t, t]), 'MsnFormatError', /two tensors named 'x'/);
    throwsNamed(() => writeSafetensors([{ name: '__metadata__', shape: [2], data: new Float32Array(2) }]), 'MsnFormatError', /__metadata__/);
    throwsNamed(() => writeSafetensors([{ name: 'y', shape: [3], data: new Float32Array(2) }]), 'MsnFormatError', /has 2 values, its shape \[3\] needs 3/);
  });
});

describe('readSafetensors on corrupt files', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data = f32bytes(1, 2);

  it('checks the header length against the cap and the file', () => {
    bad(new Uint8Array(7), /too short for the 8-byte header length/);
    bad(file(ok, data, BigInt(MAX_HEADER_BYTES) + 1n), /over the 100000000-byte limit/);
    bad(file(ok, data, 0xffff_ffff_ffff_ffffn), /over the 100000000-byte limit/);
    const f = file(ok, data);
    bad(f.subarray(0, 20), /claims \d+ bytes but the file has only 12/);
  });

  it('needs a UTF-8 JSON object of well-formed entries', () => {
    bad(file('{"a": '), /not valid UTF-8 JSON/);
    bad(file(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x7b, 0x7d, 0x7d)), /not valid UTF-8 JSON/); // {"\xff":{}}
    bad(file([1, 2]), /header is not a JSON object/);
    bad(file('null'), /header is not a JSON object/);
    bad(file({ __metadata__: { a: 1 } }), /'__metadata__\.a' is not a string/);
    bad(file({ __metadata__: ['x'] }), /'__metadata__' is not an object of strings/);
    bad(file({ a: 5 }), /entry 'a' is not an object/);
  });

  it('checks dtypes, shapes and offsets', () => {
    const entry = (e: object) => file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8], ...e } }, data);
    bad(entry({ dtype: 'F128' }), /dtype "F128"; known dtypes are BOOL/);
    bad(entry({ dtype: undefined }), /dtype undefined/);
    bad(entry({ dtype: 'toString' }), /dtype "toString"/);
    bad(entry({ shape: [-2] }), /shape \[-2\]; expected at most 8 non-negative integers/);
    bad(entry({ shape: [1.5] }), /shape \[1\.5\]/);
    bad(entry({ shape: '2' }), /shape "2"/);
    bad(entry({ shape: [1, 1, 1, 1, 1, 1, 1, 1, 2] }), /at most 8/);
    bad(entry({ data_offsets: [0] }), /data_offsets \[0\]; expected \[begin, end\]/);
    bad(entry({ data_offsets: [8, 0] }), /data_offsets \[8,0\]/);
    bad(entry({ data_offsets: [0, 8.5] }), /data_offsets/);
    bad(entry({ data_offsets: [0, 16] }), /ends at byte 16 of the data, past its end \(8 bytes/);
    bad(entry({ shape: [1] }), /needs 4 bytes but data_offsets span 8/);
    bad(entry({ shape: [1e15, 1e15] }), /larger than the whole data/);
    bad(entry({ dtype: 'F16' }), /needs 4 bytes but data_offsets span 8/);
  });

  it('needs the tensors to tile the data: no overlap, no gap, no trailing bytes', () => {
    const four = f32bytes(1, 2, 3, 4);
    bad(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, four),
      /entry 'b' overlaps the tensor before it/);
    bad(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, four),
      /bytes 4\.\.8 of the data belong to no tensor \(before 'b'\)/);
    bad(file(ok, four), /8 trailing byte\(s\)/);
    // Two tensors sharing bytes (a small file that expands): refused as an overlap.
    bad(file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data), /overlaps/);
  });

  it('caps the summed tensor bytes', () => {
    expect(() => readSafetensors(file(ok, data), { maxTotalBytes: 8 })).not.toThrow();
    throwsNamed(() => readSafetensors(file(ok, data), { maxTotalBytes: 7 }), 'MsnFormatError', /more than 7 bytes \(maxTotalBytes\)/);
  });

  it('every truncation and 500 random corruptions of a real file either parse consistently or throw MsnFormatError', () => {
    const good = writeSafetensors([
      { name: 'embeddings.patch_embeddings.projection.weight', shape: [4, 3, 2, 2], data: Float32Array.from({ length: 48 }, (_, i) => i / 7) },
      { name: 'layernorm.weight', shape: [4], data: Float32Array.of(1, 2, 3, 4) },
    ], { format: 'pt' });
    const variants: Uint8Array[] = [];
    for (let n = 0; n < good.length; n++) variants.push(good.subarray(0, n));
    const rand = mulberry32(0x5afe);
    for (let i = 0; i < 500; i++) {
      const v = good.slice();
      const flips = 1 + Math.floor(rand() * 3);
      // Mostly in the length and the JSON header, where structure lives.
      for (let j = 0; j < flips; j++) v[Math.floor(rand() * (rand() < 0.8 ? 8 + 200 : v.length))] = Math.floor(rand() * 256);
      variants.push(v);
    }
    let parsed = 0;
    for (const v of variants) {
      try {
        const st = readSafetensors(v);
        for (const t of st.tensors.values()) {
          if (t.data) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        }
        parsed++;
      } catch (e) {
        expect((e as Error).name, String(e)).toBe('MsnFormatError');
      }
    }
    expect(parsed).toBeLessThan(variants.length);
  });
});
