/**
 * tensor-container.ts cases found by mutation testing (issue #18, docs/TESTING.md):
 * exact messages (what a user reads when a checkpoint is refused), limits
 * reached exactly, the checksum diagnosis, empty tensors, header order, and the
 * option checks. Every container here is a few hundred bytes.
 */
import { describe, expect, it } from 'vitest';
import { decodeContainer, encodeContainer } from '../../src/io/tensor-container.js';
import { crc32 } from '../../src/util/crc32.js';
import { assemble, catchError, enc, fixFileCrc, splitContainer } from './container-test-helpers.js';

const RESTORE = 'the file is corrupted or truncated; restore the previous checkpoint';
const V = 'MsnValueError';
const C = 'MsnConfigError';

/** Three tensors a (3 values), b (2), c (1), back to back. */
function small(): Uint8Array {
  return encodeContainer({
    kind: 'k',
    meta: { m: 1 },
    tensors: {
      a: { shape: [3], data: Float32Array.of(1, 2, 3) },
      b: { shape: [2, 1], data: Float32Array.of(4, 5) },
      c: { shape: [], data: Float32Array.of(6) },
    },
  });
}
type Ref = { name: string; dtype: string; shape: unknown; offset: unknown; length: unknown; crc32: unknown };
type Header = { format_version: unknown; kind: unknown; meta: unknown; payload_bytes: unknown; tensors: Ref[] };
const parts = () => splitContainer(small()) as unknown as { header: Header; payload: Uint8Array };

function expectError(f: () => unknown, name: string, message: string): Error {
  const e = catchError(f);
  expect(e.name, e.message).toBe(name);
  expect(e.message).toBe(message);
  return e;
}
/** decodeContainer of a hand-assembled container (correct file checksum) fails with exactly this message. */
function expectRefused(header: object | string, payload: Uint8Array, message: string): void {
  expectError(() => decodeContainer(assemble(header, payload)), 'MsnFormatError', `Checkpoint container: ${message}`);
}
function edited(f: (h: Header) => void): Header {
  const { header } = parts();
  f(header);
  return header;
}

describe('encodeContainer: argument messages', () => {
  it('describes what it got: null, an array, a (shortened) string, a number, a boolean, a type', () => {
    const got = (x: unknown) => `encodeContainer: expected { kind, meta, tensors }, got ${x}.`;
    expectError(() => encodeContainer(null as never), V, got('null'));
    expectError(() => encodeContainer([] as never), V, got('an array'));
    expectError(() => encodeContainer('x'.repeat(41) as never), V, got(`the string "${'x'.repeat(40)}..."`));
    expectError(() => encodeContainer('x'.repeat(40) as never), V, got(`the string "${'x'.repeat(40)}"`));
    const kind = (x: string) => `encodeContainer: kind must be a non-empty string such as 'msn-checkpoint', got ${x}.`;
    expectError(() => encodeContainer({ kind: 5, meta: null, tensors: {} } as never), V, kind('5'));
    expectError(() => encodeContainer({ kind: true, meta: null, tensors: {} } as never), V, kind('true'));
    expectError(() => encodeContainer({ kind: undefined, meta: null, tensors: {} } as never), V, kind('undefined'));
    expectError(() => encodeContainer({ kind: '', meta: null, tensors: {} } as never), V, kind('the string ""'));
    const tensors = (x: string) => `encodeContainer: tensors must be an object mapping names to { shape, data }, got ${x}.`;
    expectError(() => encodeContainer({ kind: 'k', meta: null, tensors: [] } as never), V, tensors('an array'));
    expectError(() => encodeContainer({ kind: 'k', meta: null, tensors: null } as never), V, tensors('null'));
    expectError(() => encodeContainer({ kind: 'k', meta: null, tensors: () => 1 } as never), V, tensors('function'));
  });

  it('tensor entries: not an object, no shape array, bad dimensions, wrong sizes; names over 80 characters are shortened', () => {
    const bad = (t: unknown, name = 'w') => () => encodeContainer({ kind: 'k', meta: null, tensors: { [name]: t } as never });
    const form = (q: string) => `encodeContainer: tensor ${q} must be { shape: number[], data: Float32Array }; convert other arrays with Float32Array.from.`;
    expectError(bad(null), V, form('"w"'));
    expectError(bad([]), V, form('"w"'));
    expectError(bad({ shape: 2, data: new Float32Array(2) }), V, form('"w"'));
    expectError(bad({ shape: [2], data: new Float64Array(2) }), V, form('"w"'));
    expectError(bad(null, 'n'.repeat(81)), V, form(`"${'n'.repeat(80)}..."`));
    expectError(bad(null, 'n'.repeat(80)), V, form(`"${'n'.repeat(80)}"`));
    for (const shape of [['2'], [1.5], [-1], [NaN], [2 ** 53]]) {
      expectError(
        bad({ shape, data: new Float32Array(2) }),
        V,
        `encodeContainer: tensor "w" has shape ${JSON.stringify(shape)}; dimensions must be non-negative integers.`,
      );
    }
    expectError(
      bad({ shape: [2, 2], data: new Float32Array(3) }),
      V,
      'encodeContainer: tensor "w" has shape [2,2] (4 values) but data holds 3; reshape or fix the data.',
    );
    expectError(
      bad({ shape: [3], data: Float32Array.of(0, 0, Infinity) }),
      V,
      'encodeContainer: tensor "w" holds Infinity at index 2; checkpoints must be finite (the run has diverged: resume from an earlier checkpoint or lower the learning rate).',
    );
    expectError(() => encodeContainer({ kind: 'k', meta: undefined, tensors: {} }), V, 'encodeContainer: meta is undefined; pass null (or {}) when there is no metadata.');
  });

  it('meta: 256 levels of nesting are fine, 257 are not; a value shared by siblings is not a cycle; odd objects are named', () => {
    const nest = (n: number) => {
      let v: unknown = 0;
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    // meta itself is depth 0: 256 arrays put the number at depth 256.
    expect(decodeContainer(encodeContainer({ kind: 'k', meta: nest(256), tensors: {} })).meta).toEqual(nest(256));
    const e = catchError(() => encodeContainer({ kind: 'k', meta: nest(257), tensors: {} }));
    expect(e.name).toBe(V);
    expect(e.message).toMatch(/^encodeContainer: meta(\[0\]){257} nests deeper than 256 levels; flatten the metadata\.$/);

    // Objects count as levels too.
    const nestObj = (n: number) => {
      let v: unknown = 0;
      for (let i = 0; i < n; i++) v = { a: v };
      return v;
    };
    expect(decodeContainer(encodeContainer({ kind: 'k', meta: nestObj(256), tensors: {} })).meta).toEqual(nestObj(256));
    const eo = catchError(() => encodeContainer({ kind: 'k', meta: nestObj(257), tensors: {} }));
    expect(eo.name).toBe(V);
    expect(eo.message).toMatch(/^encodeContainer: meta(\.a){257} nests deeper than 256 levels; flatten the metadata\.$/);

    const shared = { lr: 0.1 };
    const meta = { a: shared, b: [shared, shared] };
    expect(decodeContainer(encodeContainer({ kind: 'k', meta, tensors: {} })).meta).toEqual(meta);
    const np = Object.assign(Object.create(null) as object, { x: 1 });
    expect(decodeContainer(encodeContainer({ kind: 'k', meta: { np }, tensors: {} })).meta).toEqual({ np: { x: 1 } });

    class Step {
      n = 1;
    }
    const m = (meta: unknown) => () => encodeContainer({ kind: 'k', meta, tensors: {} });
    expectError(
      m({ s: new Step() }),
      V,
      'encodeContainer: meta.s is a Step, not a plain object; convert it first (dates to ISO strings, typed arrays to tensors or number arrays).',
    );
    expectError(
      m({ o: Object.create(Object.create(null) as object) }),
      V,
      'encodeContainer: meta.o is a object, not a plain object; convert it first (dates to ISO strings, typed arrays to tensors or number arrays).',
    );
    expectError(m({ s: Symbol('x') }), V, 'encodeContainer: meta.s is a symbol; meta may hold only null, booleans, finite numbers, strings, arrays and plain objects.');
    expectError(m([0, -Infinity]), V, 'encodeContainer: meta[1] is -Infinity; JSON cannot hold it, store it as a string or null.');
    expectError(m([0, [1, undefined]]), V, 'encodeContainer: meta[1][1] is undefined (or a hole); use null.');
    const cyc: unknown[] = [];
    cyc.push({ back: cyc });
    expectError(m(cyc), V, 'encodeContainer: meta[0].back refers back to one of its parents (a cycle); JSON cannot hold it.');
  });

  it('writes the documented header: version, kind, meta, payload size and per-tensor offset, length and CRC-32', () => {
    const { header, payload } = parts();
    const bytes = (a: number[]) => new Uint8Array(Float32Array.from(a).buffer);
    expect(header).toEqual({
      format_version: 1,
      kind: 'k',
      meta: { m: 1 },
      payload_bytes: 24,
      tensors: [
        { name: 'a', dtype: 'float32', shape: [3], offset: 0, length: 3, crc32: crc32(bytes([1, 2, 3])) },
        { name: 'b', dtype: 'float32', shape: [2, 1], offset: 12, length: 2, crc32: crc32(bytes([4, 5])) },
        { name: 'c', dtype: 'float32', shape: [], offset: 20, length: 1, crc32: crc32(bytes([6])) },
      ],
    });
    expect(Array.from(new Float32Array(payload.buffer, payload.byteOffset, 6))).toEqual([1, 2, 3, 4, 5, 6]);
    const all = small();
    expect(new DataView(all.buffer).getUint32(12, true)).toBe(crc32(all, 16));
  });
});

describe('decodeContainer: options', () => {
  const b = small();
  it('options must be an object; checkMeta a function; maxBytes an integer >= 16; expectedKind a non-empty string', () => {
    expectError(() => decodeContainer(b, null as never), C, 'decodeContainer: options must be an object, got null.');
    expectError(() => decodeContainer(b, [] as never), C, 'decodeContainer: options must be an object, got an array.');
    expectError(() => decodeContainer(b, { checkMeta: 'yes' as never }), C, 'decodeContainer: checkMeta must be a function when given, got the string "yes".');
    expectError(() => decodeContainer(b, { maxBytes: '100' as never }), C, 'decodeContainer: maxBytes must be an integer of at least 16, got the string "100".');
    expectError(() => decodeContainer(b, { maxBytes: 15 }), C, 'decodeContainer: maxBytes must be an integer of at least 16, got 15.');
    expectError(() => decodeContainer(b, { maxBytes: 2 ** 53 }), C, 'decodeContainer: maxBytes must be an integer of at least 16, got 9007199254740992.');
    expectError(() => decodeContainer(b, { expectedKind: 5 as never }), C, 'decodeContainer: expectedKind must be a non-empty string when given, got 5.');
    expectError(() => decodeContainer(new Uint8Array(17), { maxBytes: 16 }), 'MsnFormatError', 'Checkpoint container: the input is 17 bytes, over the limit of 16; pass a larger maxBytes if you trust this file.');
    // maxBytes 16 is allowed: a 16-byte input gets past the options to the magic check.
    expectError(() => decodeContainer(new Uint8Array(16), { maxBytes: 16 }), 'MsnFormatError', "Checkpoint container: the input does not start with 'MSNCKPT1' (it is not an msn-web checkpoint, or its start is corrupted).");
    expectError(() => decodeContainer([1, 2] as never), V, 'decodeContainer: expected a Uint8Array, got an array; wrap an ArrayBuffer with new Uint8Array(buffer).');
    expect(decodeContainer(b, { expectedKind: 'k', checkMeta: () => undefined }).kind).toBe('k');
  });

  it('checkMeta sees the meta; a wrong kind names both kinds', () => {
    const seen: unknown[] = [];
    decodeContainer(b, { checkMeta: (m) => void seen.push(m) });
    expect(seen).toEqual([{ m: 1 }]);
    expectError(() => decodeContainer(b, { expectedKind: 'msn-checkpoint' }), 'MsnFormatError', `Checkpoint container: expected a 'msn-checkpoint' file but this one holds "k"; check which file you opened.`);
  });
});

describe('decodeContainer: preamble and checksum messages', () => {
  it('short inputs, foreign and newer magics (non-printable bytes shown as ?)', () => {
    const F = 'MsnFormatError';
    expectError(() => decodeContainer(small().subarray(0, 15)), F, `Checkpoint container: the input is only 15 bytes, shorter than the 16-byte preamble; ${RESTORE}.`);
    const magic = (s: number[]) => {
      const x = small();
      x.set(s, 0);
      return x;
    };
    const foreign = "Checkpoint container: the input does not start with 'MSNCKPT1' (it is not an msn-web checkpoint, or its start is corrupted).";
    expectError(() => decodeContainer(magic([...enc('MSNCKPX1')])), F, foreign);
    expectError(() => decodeContainer(magic([...enc('NSNCKPT1')])), F, foreign);
    const newer = (shown: string) => `Checkpoint container: the file is a newer container version ('${shown}', this reader handles 'MSNCKPT1'); upgrade msn-web.`;
    expectError(() => decodeContainer(magic([...enc('MSNCKPT'), 0x7f])), F, newer('MSNCKPT?'));
    expectError(() => decodeContainer(magic([...enc('MSNCKPT'), 0x1f])), F, newer('MSNCKPT?'));
    expectError(() => decodeContainer(magic([...enc('MSNCKPT'), 0x20])), F, newer('MSNCKPT '));
    expectError(() => decodeContainer(magic([...enc('MSNCKPT'), 0x7e])), F, newer('MSNCKPT~'));
  });

  it('header length 0 or beyond the input', () => {
    const x = small();
    const setLen = (n: number) => {
      const y = x.slice();
      new DataView(y.buffer).setUint32(8, n, true);
      return fixFileCrc(y);
    };
    expectError(() => decodeContainer(setLen(0)), 'MsnFormatError', `Checkpoint container: the header length field says 0 bytes but ${x.length - 16} follow the preamble; ${RESTORE}.`);
    // The whole rest of the input as header is allowed by this check (and then fails as JSON with a payload).
    expect(catchError(() => decodeContainer(setLen(x.length - 16))).message).toMatch(/not valid UTF-8 JSON/);
    expectError(() => decodeContainer(setLen(x.length - 15)), 'MsnFormatError', `Checkpoint container: the header length field says ${x.length - 15} bytes but ${x.length - 16} follow the preamble; ${RESTORE}.`);
  });

  it('a checksum mismatch names the damaged tensors: one, two, three; or the header/padding; or a damaged header', () => {
    const { header, payload } = parts();
    const hl = new DataView(small().buffer).getUint32(8, true);
    const start = Math.ceil((16 + hl) / 4) * 4;
    const damage = (...offsets: number[]) => {
      const y = small();
      for (const o of offsets) y[start + o] ^= 1;
      return y;
    };
    const mismatch = (where: string) => `Checkpoint container: checksum mismatch${where}: ${RESTORE}.`;
    expectError(() => decodeContainer(damage(13)), 'MsnFormatError', mismatch(' in tensor "b"'));
    expectError(() => decodeContainer(damage(13, 1)), 'MsnFormatError', mismatch(' in tensor "a" and 1 other tensor'));
    expectError(() => decodeContainer(damage(21, 13, 1)), 'MsnFormatError', mismatch(' in tensor "a" and 2 other tensors'));
    const fileCrc = small();
    fileCrc[12] ^= 1; // only the stored file checksum is wrong
    expectError(() => decodeContainer(fileCrc), 'MsnFormatError', mismatch(' (in the header or padding)'));
    const h = assemble(header, payload);
    h[17] ^= 0x40; // the JSON no longer parses
    expectError(() => decodeContainer(h), 'MsnFormatError', mismatch(' (the header is damaged, or the file was cut short)'));
  });
});

describe('decodeContainer: header checks with their messages', () => {
  it('header JSON, object and version', () => {
    const { header, payload } = parts();
    let parseMessage = '';
    try {
      JSON.parse('{"a":');
    } catch (err) {
      parseMessage = (err as Error).message;
    }
    expectRefused('{"a":', payload, `the header is not valid UTF-8 JSON (${parseMessage}); ${RESTORE}.`);
    // Invalid UTF-8 inside a JSON string (a lenient decoder would read U+FFFD and accept it), and a byte-order mark.
    const text = JSON.stringify({ ...header, meta: { note: 'AB' } });
    const at = text.indexOf('AB');
    const raw = enc(text);
    raw[at] = 0xff;
    const e1 = catchError(() => decodeContainer(assemble(raw, payload)));
    expect(e1.name).toBe('MsnFormatError');
    expect(e1.message).toMatch(/^Checkpoint container: the header is not valid UTF-8 JSON \(/);
    expect(decodeContainer(assemble(text, payload)).meta).toEqual({ note: 'AB' });
    const bom = Uint8Array.from([0xef, 0xbb, 0xbf, ...enc(text)]);
    const e2 = catchError(() => decodeContainer(assemble(bom, payload)));
    expect(e2.name).toBe('MsnFormatError');
    expect(e2.message).toMatch(/^Checkpoint container: the header is not valid UTF-8 JSON \(/);
    expectRefused('"text"', payload, `the header is the string "text", not an object; ${RESTORE}.`);
    expectRefused('true', payload, `the header is true, not an object; ${RESTORE}.`);
    for (const [v, shown] of [
      [0, '0'],
      [1.5, '1.5'],
      [2.5, '2.5'],
      [null, 'null'],
      [true, 'true'],
    ] as const) {
      expectRefused(edited((h) => (h.format_version = v)), payload, `format_version is ${shown}, expected 1; ${RESTORE}.`);
    }
    expectRefused(edited((h) => (h.format_version = 3)), payload, 'format_version 3 is newer than this reader (1); upgrade msn-web.');
    expectRefused(edited((h) => (h.kind = '')), payload, 'the header\'s kind is the string "", expected a non-empty string.');
    expectRefused(edited((h) => (h.kind = null)), payload, "the header's kind is null, expected a non-empty string.");
    expectRefused(edited((h) => delete (h as { meta?: unknown }).meta), payload, 'the header has no meta entry.');
    expect(decodeContainer(assemble(edited((h) => (h.meta = null)), payload)).meta).toBeNull();
  });

  it('a file that ends inside the padding after the header', () => {
    // 16-byte preamble + a header of length 4n + 1, and no padding or data after it.
    let text = '{"format_version":1,"kind":"k","meta":null,"payload_bytes":0,"tensors":[]}';
    while ((16 + text.length) % 4 !== 1) text += ' ';
    const hb = enc(text);
    const out = new Uint8Array(16 + hb.length);
    out.set(enc('MSNCKPT1'));
    new DataView(out.buffer).setUint32(8, hb.length, true);
    out.set(hb, 16);
    fixFileCrc(out);
    const ds = Math.ceil(out.length / 4) * 4;
    expectError(() => decodeContainer(out), 'MsnFormatError', `Checkpoint container: the data section would start at byte ${ds}, past the end of the ${out.length}-byte file; ${RESTORE}.`);
  });

  it('payload_bytes', () => {
    const { payload } = parts();
    for (const [v, shown] of [
      [-4, '-4'],
      [2, '2'],
      [1.5, '1.5'],
      ['y'.repeat(50), `the string "${'y'.repeat(40)}..."`],
      [null, 'null'],
      [2 ** 53, '9007199254740992'],
    ] as const) {
      expectRefused(edited((h) => (h.payload_bytes = v)), payload, `payload_bytes is ${shown}, expected a non-negative multiple of 4.`);
    }
    expectRefused(edited((h) => (h.payload_bytes = 20)), payload, `the header describes 20 data bytes but 24 follow it; ${RESTORE}.`);
    expectRefused(edited((h) => (h.tensors = 'x' as never)), payload, 'the header\'s tensors entry is the string "x", expected an array.');
    expectRefused(edited((h) => (h.tensors[2] = 7 as never)), payload, 'tensors[2] is 7, expected an object.');
  });

  it('tensor entries: name, dtype, shape, length, offset, crc32', () => {
    const { payload } = parts();
    const t = (f: (r: Ref) => void) => edited((h) => f(h.tensors[1]));
    expectRefused(t((r) => (r.name = 5 as never)), payload, 'tensors[1].name is 5, expected a non-empty string.');
    const long = 'q'.repeat(100);
    expectRefused(
      edited((h) => {
        h.tensors[0].name = long;
        h.tensors[1].name = long;
      }),
      payload,
      `tensor name "${'q'.repeat(80)}..." appears twice; names must be unique.`,
    );
    expectRefused(t((r) => (r.dtype = 'float16')), payload, `tensor "b" has dtype the string "float16"; this reader supports only 'float32'.`);
    expectRefused(t((r) => (r.shape = { 0: 2 })), payload, 'tensor "b" has shape object, expected an array of non-negative integers.');
    expectRefused(t((r) => (r.shape = [2, -1])), payload, 'tensor "b" has dimension -1; dimensions must be non-negative integers.');
    expectRefused(t((r) => (r.shape = [2, 2 ** 53])), payload, 'tensor "b" has dimension 9007199254740992; dimensions must be non-negative integers.');
    // 6 values fit the 24-byte data section; 7 do not (the product is checked against it as it grows).
    expectRefused(t((r) => ((r.shape = [7]), (r.length = 7))), payload, 'tensor "b" has shape [7] but the data section holds only 6 values.');
    expectRefused(t((r) => ((r.shape = [6]), (r.length = 6))), payload, `tensor "b" spans bytes 12..36 but the data section has 24; ${RESTORE}.`);
    const longShape = Array.from({ length: 20 }, () => 1).concat([7]);
    expectRefused(t((r) => (r.shape = longShape)), payload, `tensor "b" has shape ${JSON.stringify(longShape.slice(0, 16))} but the data section holds only 6 values.`);
    for (const [v, shown] of [
      [1.5, '1.5'],
      ['2', 'the string "2"'],
      [-2, '-2'],
    ] as const) {
      expectRefused(t((r) => (r.length = v)), payload, `tensor "b" has length ${shown}, expected a non-negative integer.`);
    }
    expectRefused(t((r) => (r.length = 3)), payload, 'tensor "b" has length 3 but its shape holds 2 values.');
    for (const [v, shown] of [
      [13, '13'],
      [-4, '-4'],
      [12.5, '12.5'],
      [null, 'null'],
      [2 ** 53, '9007199254740992'],
    ] as const) {
      expectRefused(t((r) => (r.offset = v)), payload, `tensor "b" has offset ${shown}, expected a non-negative multiple of 4.`);
    }
    expectRefused(t((r) => (r.offset = 20)), payload, `tensor "b" spans bytes 20..28 but the data section has 24; ${RESTORE}.`);
    for (const [v, shown] of [
      [1.5, '1.5'],
      ['7', 'the string "7"'],
      [-1, '-1'],
      [2 ** 32, '4294967296'],
    ] as const) {
      expectRefused(t((r) => (r.crc32 = v)), payload, `tensor "b" has crc32 ${shown}, expected a uint32.`);
    }
    // The largest uint32 is a valid (if wrong) checksum: the tensor's own check fails.
    expectRefused(t((r) => (r.crc32 = 0xffffffff)), payload, `tensor "b" fails its checksum: ${RESTORE}.`);
  });

  it('overlaps are found in any header order; adjacent tensors and empty tensors anywhere are fine', () => {
    const { payload } = parts();
    const reversed = edited((h) => h.tensors.reverse());
    const d = decodeContainer(assemble(reversed, payload));
    expect(Object.keys(d.tensors)).toEqual(['c', 'b', 'a']);
    expect(Array.from(d.tensors.b.data)).toEqual([4, 5]);
    expect(d.tensors.b.shape).toEqual([2, 1]);
    // b moved back by 4 bytes onto a's last value; listed first.
    const overlap = edited((h) => {
      h.tensors[1].offset = 8;
      h.tensors.reverse();
    });
    expectRefused(overlap, payload, `tensors "a" and "b" overlap in the data section; ${RESTORE}.`);
    // An empty tensor at a's offset, at b's, and at the very end of the data section.
    for (const offset of [0, 12, 24]) {
      const withEmpty = edited((h) => h.tensors.push({ name: 'e', dtype: 'float32', shape: [0, 3], offset, length: 0, crc32: 0 }));
      const out = decodeContainer(assemble(withEmpty, payload));
      expect(out.tensors.e.shape).toEqual([0, 3]);
      expect(out.tensors.e.data.length).toBe(0);
      expect(Array.from(out.tensors.a.data)).toEqual([1, 2, 3]);
    }
    expectRefused(
      edited((h) => h.tensors.push({ name: 'e', dtype: 'float32', shape: [0], offset: 28, length: 0, crc32: 0 })),
      payload,
      `tensor "e" spans bytes 28..28 but the data section has 24; ${RESTORE}.`,
    );
  });
});
