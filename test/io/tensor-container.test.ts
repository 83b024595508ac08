import { describe, expect, it } from 'vitest';
import { MsnFormatError } from '../../src/errors.js';
import {
  CONTAINER_MAGIC,
  type ContainerContents,
  DEFAULT_CONTAINER_MAX_BYTES,
  decodeContainer,
  encodeContainer,
} from '../../src/io/tensor-container.js';
import { crc32 } from '../../src/util/crc32.js';
import { Rng } from '../../src/util/rng.js';
import { assemble, catchError, enc, expectNamedError, fixFileCrc, outcome, splitContainer } from './container-test-helpers.js';

function randomFloats(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform() * 2 - 1;
  return out;
}

function sample(seed = 1): ContainerContents {
  const rng = new Rng(seed);
  return {
    kind: 'msn-checkpoint',
    meta: {
      step: 123,
      config: { preset: 'micro-p4-28', lr: 0.0005, betas: [0.9, 0.999], ema: { start: 0.996, end: 1 } },
      rng: [1, 2, 3, 4294967295],
      note: 'ünïcødé ✓ 😀 \u0000 "quoted"',
      flags: [null, true, false, -1.5e-300],
    },
    tensors: {
      'encoder.patch_embed.weight': { shape: [4, 3, 5], data: randomFloats(rng, 60) },
      'encoder.norm.bias': { shape: [5], data: randomFloats(rng, 5) },
      empty: { shape: [0, 7], data: new Float32Array(0) },
      temperature: { shape: [], data: Float32Array.of(0.1) },
      prototypes: { shape: [6, 5], data: randomFloats(rng, 30) },
    },
  };
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

function expectSameTensors(actual: ContainerContents['tensors'], expected: ContainerContents['tensors']) {
  expect(Object.keys(actual)).toEqual(Object.keys(expected));
  for (const [name, t] of Object.entries(expected)) {
    expect(actual[name].shape, name).toEqual(t.shape);
    expect(actual[name].data).toBeInstanceOf(Float32Array);
    expect(bitsOf(actual[name].data), name).toEqual(bitsOf(t.data));
  }
}

describe('encodeContainer / decodeContainer round trip', () => {
  it('preserves kind, meta, names, shapes (incl. empty and scalar) and data bit for bit', () => {
    const input = sample();
    const bytes = encodeContainer(input);
    const out = decodeContainer(bytes, { expectedKind: 'msn-checkpoint' });
    expect(out.kind).toBe('msn-checkpoint');
    expect(out.meta).toEqual(input.meta);
    expectSameTensors(out.tensors, input.tensors);
    expect(out.tensors.temperature.shape).toEqual([]);
    expect(out.tensors.temperature.data).toHaveLength(1);
    expect(out.tensors.empty.data).toHaveLength(0);
  });

  it('is bit-exact for every finite float32 class: -0, subnormals, extremes, random bit patterns', () => {
    const rng = new Rng(7);
    const bits = new Uint32Array(4096);
    const special = [0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff, 0x00800000, 0x3f800000];
    bits.set(special);
    for (let i = special.length; i < bits.length; i++) {
      let b = rng.nextUint32();
      if (((b >>> 23) & 0xff) === 0xff) b ^= 0x40000000; // not NaN/Infinity
      bits[i] = b;
    }
    const data = new Float32Array(bits.buffer);
    const out = decodeContainer(encodeContainer({ kind: 'k', meta: null, tensors: { x: { shape: [64, 64], data } } }));
    expect(bitsOf(out.tensors.x.data)).toEqual(bits);
    expect(Object.is(out.tensors.x.data[1], -0)).toBe(true);
  });

  it('writes float32 little-endian through the documented layout', () => {
    const bytes = encodeContainer({ kind: 'k', meta: { a: 1 }, tensors: { one: { shape: [2], data: Float32Array.of(1, -2) } } });
    const headerText =
      '{"format_version":1,"kind":"k","meta":{"a":1},"payload_bytes":8,"tensors":' +
      `[{"name":"one","dtype":"float32","shape":[2],"offset":0,"length":2,"crc32":${crc32(Uint8Array.of(0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0))}}]}`;
    const view = new DataView(bytes.buffer);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe(CONTAINER_MAGIC);
    expect(view.getUint32(8, true)).toBe(enc(headerText).length);
    expect(view.getUint32(12, true)).toBe(crc32(bytes, 16));
    expect(new TextDecoder().decode(bytes.subarray(16, 16 + enc(headerText).length))).toBe(headerText);
    const start = Math.ceil((16 + enc(headerText).length) / 4) * 4;
    expect(bytes.length).toBe(start + 8);
    expect([...bytes.subarray(16 + enc(headerText).length, start)].every((b) => b === 0)).toBe(true);
    expect([...bytes.subarray(start)]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
  });

  it('copies data out: decoded tensors survive the input being overwritten, and never share its buffer', () => {
    const input = sample(2);
    const bytes = encodeContainer(input);
    const out = decodeContainer(bytes);
    bytes.fill(0xff);
    expectSameTensors(out.tensors, input.tensors);
    for (const t of Object.values(out.tensors)) expect(t.data.buffer).not.toBe(bytes.buffer);
  });

  it('reads from an unaligned view into a larger buffer', () => {
    const input = sample(3);
    const bytes = encodeContainer(input);
    const big = new Uint8Array(bytes.length + 7);
    big.set(bytes, 3);
    const out = decodeContainer(big.subarray(3, 3 + bytes.length));
    expectSameTensors(out.tensors, input.tensors);
  });

  it('reads data encoded from views into larger buffers', () => {
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    const out = decodeContainer(encodeContainer({ kind: 'k', meta: 0, tensors: { v: { shape: [3], data: backing.subarray(1, 4) } } }));
    expect([...out.tensors.v.data]).toEqual([1, 2, 3]);
  });

  it('handles no tensors, odd names and a tensor named __proto__ as a plain entry', () => {
    expect(decodeContainer(encodeContainer({ kind: 'k', meta: [], tensors: {} }))).toEqual({ kind: 'k', meta: [], tensors: {} });
    const tensors = Object.fromEntries([
      ['__proto__', { shape: [1], data: Float32Array.of(5) }],
      ['a/b.c:0 ✓', { shape: [1, 1], data: Float32Array.of(6) }],
    ]);
    const out = decodeContainer(encodeContainer({ kind: 'k', meta: JSON.parse('{"__proto__": {"x": 1}}'), tensors }));
    expect(Object.getPrototypeOf(out.tensors)).toBe(Object.prototype);
    expect(Object.keys(out.tensors)).toEqual(['__proto__', 'a/b.c:0 ✓']);
    expect([...out.tensors['__proto__'].data]).toEqual([5]);
    expect(Object.getPrototypeOf(out.meta)).toBe(Object.prototype);
    expect(Object.keys(out.meta as object)).toEqual(['__proto__']);
  });

  it('keeps lone surrogates in meta and names exactly (well-formed JSON escapes them)', () => {
    const weird = 'a\ud800b\udc00';
    const out = decodeContainer(encodeContainer({ kind: 'k', meta: { s: weird }, tensors: { [weird]: { shape: [0], data: new Float32Array() } } }));
    expect((out.meta as { s: string }).s).toBe(weird);
    expect(Object.keys(out.tensors)).toEqual([weird]);
  });

  it('checks expectedKind', () => {
    const bytes = encodeContainer(sample());
    expectNamedError(() => decodeContainer(bytes, { expectedKind: 'msn-model' }), 'MsnFormatError', /expected a 'msn-model' file.*"msn-checkpoint"/);
  });

  it('encodes and decodes 16 MiB quickly', () => {
    const data = randomFloats(new Rng(4), 4 * 1024 * 1024);
    const t0 = performance.now();
    const bytes = encodeContainer({ kind: 'k', meta: null, tensors: { big: { shape: [4096, 1024], data } } });
    const t1 = performance.now();
    const out = decodeContainer(bytes);
    const t2 = performance.now();
    const got = bitsOf(out.tensors.big.data);
    const want = bitsOf(data);
    let mismatches = 0;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) mismatches++;
    expect(mismatches).toBe(0);
    expect(got.length).toBe(want.length);
    console.log(`16 MiB container: encode ${(t1 - t0).toFixed(0)} ms, decode ${(t2 - t1).toFixed(0)} ms`);
  });
});

describe('encodeContainer rejects what could not be read back', () => {
  const ok = { shape: [2], data: Float32Array.of(1, 2) };
  const cases: [string, () => unknown, RegExp][] = [
    ['empty kind', () => encodeContainer({ kind: '', meta: null, tensors: {} }), /kind must be a non-empty string/],
    ['undefined meta', () => encodeContainer({ kind: 'k', meta: undefined, tensors: {} }), /meta is undefined/],
    ['NaN in meta', () => encodeContainer({ kind: 'k', meta: { lr: NaN }, tensors: {} }), /meta\.lr is NaN/],
    ['Infinity in meta', () => encodeContainer({ kind: 'k', meta: [1, Infinity], tensors: {} }), /meta\[1\] is Infinity/],
    ['Date in meta', () => encodeContainer({ kind: 'k', meta: { at: new Date(0) } as unknown, tensors: {} }), /meta\.at is a Date/],
    ['typed array in meta', () => encodeContainer({ kind: 'k', meta: { w: new Float32Array(2) }, tensors: {} }), /Float32Array, not a plain object/],
    ['bigint in meta', () => encodeContainer({ kind: 'k', meta: { n: 1n }, tensors: {} }), /meta\.n is a bigint/],
    ['function in meta', () => encodeContainer({ kind: 'k', meta: { f: () => 1 }, tensors: {} }), /meta\.f is a function/],
    ['hole in meta array', () => encodeContainer({ kind: 'k', meta: [1, undefined], tensors: {} }), /meta\[1\] is undefined/],
    [
      'cycle in meta',
      () => {
        const m: Record<string, unknown> = {};
        m.self = m;
        return encodeContainer({ kind: 'k', meta: m, tensors: {} });
      },
      /cycle/,
    ],
    ['empty tensor name', () => encodeContainer({ kind: 'k', meta: null, tensors: { '': ok } }), /empty name/],
    ['number[] data', () => encodeContainer({ kind: 'k', meta: null, tensors: { w: { shape: [2], data: [1, 2] as unknown as Float32Array } } }), /Float32Array/],
    ['shape mismatch', () => encodeContainer({ kind: 'k', meta: null, tensors: { w: { shape: [3], data: Float32Array.of(1, 2) } } }), /"w".*3 values.*holds 2/],
    ['negative dim', () => encodeContainer({ kind: 'k', meta: null, tensors: { w: { shape: [-2], data: Float32Array.of(1, 2) } } }), /non-negative integers/],
    ['NaN in tensor', () => encodeContainer({ kind: 'k', meta: null, tensors: { w: { shape: [2], data: Float32Array.of(1, NaN) } } }), /"w" holds NaN at index 1/],
    ['Infinity in tensor', () => encodeContainer({ kind: 'k', meta: null, tensors: { w: { shape: [1], data: Float32Array.of(-Infinity) } } }), /"w" holds -Infinity/],
  ];
  it.each(cases)('%s → MsnValueError', (_label, f, message) => {
    expectNamedError(f, 'MsnValueError', message);
  });

  it('drops undefined object properties like JSON does', () => {
    const out = decodeContainer(encodeContainer({ kind: 'k', meta: { a: 1, b: undefined }, tensors: {} }));
    expect(out.meta).toEqual({ a: 1 });
  });
});

describe('decodeContainer options and limits', () => {
  const bytes = encodeContainer(sample());

  it('honours maxBytes before looking inside', () => {
    expect(decodeContainer(bytes, { maxBytes: bytes.length }).kind).toBe('msn-checkpoint');
    expectNamedError(() => decodeContainer(bytes, { maxBytes: bytes.length - 1 }), 'MsnFormatError', /over the limit of \d+; pass a larger maxBytes/);
    // The size check comes first: even garbage reports the limit, not the magic.
    expectNamedError(() => decodeContainer(new Uint8Array(100), { maxBytes: 50 }), 'MsnFormatError', /over the limit of 50/);
    expect(DEFAULT_CONTAINER_MAX_BYTES).toBe(2 ** 31);
  });

  it('rejects bad options and non-Uint8Array input with config/value errors', () => {
    expectNamedError(() => decodeContainer(bytes, { maxBytes: -1 }), 'MsnConfigError', /maxBytes/);
    expectNamedError(() => decodeContainer(bytes, { maxBytes: 1.5 }), 'MsnConfigError', /maxBytes/);
    expectNamedError(() => decodeContainer(bytes, { expectedKind: '' }), 'MsnConfigError', /expectedKind/);
    expectNamedError(() => decodeContainer(bytes.buffer as unknown as Uint8Array), 'MsnValueError', /Uint8Array/);
  });
});

describe('decodeContainer rejects damaged and hostile files with MsnFormatError only', () => {
  const base = encodeContainer(sample(5));
  const { header: baseHeader, payload: basePayload } = splitContainer(base);
  const headerLength = new DataView(base.buffer).getUint32(8, true);
  const dataStart = Math.ceil((16 + headerLength) / 4) * 4;

  /** Run every case; collect anything that is not an MsnFormatError. */
  function expectAllRejected(cases: [string, Uint8Array][]) {
    const bad: string[] = [];
    for (const [label, bytes] of cases) {
      const o = outcome(() => decodeContainer(bytes));
      if (o !== 'MsnFormatError') bad.push(`${label}: ${o}`);
    }
    expect(bad).toEqual([]);
  }

  it('single-byte flips anywhere (preamble, header, padding, payload): 400 seeded cases', () => {
    const rng = new Rng(11);
    const cases: [string, Uint8Array][] = [];
    for (let k = 0; k < 400; k++) {
      // Bias a quarter of the flips into the first bytes so every preamble field is hit.
      const pos = k % 4 === 0 ? rng.nextUint32() % 24 : rng.nextUint32() % base.length;
      const mask = 1 + (rng.nextUint32() % 255);
      const b = base.slice();
      b[pos] ^= mask;
      cases.push([`flip byte ${pos} ^ ${mask}`, b]);
    }
    expectAllRejected(cases);
  });

  it('multi-byte scribbles: 150 seeded cases', () => {
    const rng = new Rng(12);
    const cases: [string, Uint8Array][] = [];
    for (let k = 0; k < 150; k++) {
      const b = base.slice();
      const start = rng.nextUint32() % b.length;
      const n = 1 + (rng.nextUint32() % 16);
      for (let i = start; i < Math.min(b.length, start + n); i++) b[i] = rng.nextUint32() & 0xff;
      if (b.every((v, i) => v === base[i])) continue; // scribbled the same bytes back
      cases.push([`scribble ${n} at ${start}`, b]);
    }
    expect(cases.length).toBeGreaterThan(140);
    expectAllRejected(cases);
  });

  it('truncation at every length, and appended bytes', () => {
    const cases: [string, Uint8Array][] = [];
    for (let n = 0; n < base.length; n++) cases.push([`truncated to ${n}`, base.slice(0, n)]);
    for (const extra of [1, 3, 4, 8, 1000]) {
      const b = new Uint8Array(base.length + extra);
      b.set(base);
      cases.push([`${extra} zero bytes appended`, b]);
      cases.push([`${extra} zero bytes appended, crc fixed`, fixFileCrc(b.slice())]);
    }
    expect(cases.length).toBeGreaterThan(500);
    expectAllRejected(cases);
  });

  it('payload damage is reported as corruption naming the tensor', () => {
    const b = base.slice();
    b[b.length - 3] ^= 0x01; // last tensor in insertion order: prototypes
    const err = expectNamedError(() => decodeContainer(b), 'MsnFormatError');
    expect(err).toBeInstanceOf(MsnFormatError);
    expect(err.message).toMatch(/checksum mismatch in tensor "prototypes": the file is corrupted or truncated; restore the previous checkpoint/);
    const h = base.slice();
    h[20] ^= 0x01;
    expectNamedError(() => decodeContainer(h), 'MsnFormatError', /checksum mismatch \(the header is damaged.*restore the previous checkpoint/);
    expectNamedError(() => decodeContainer(base.slice(0, base.length - 4)), 'MsnFormatError', /corrupted or truncated/);
  });

  it('lying header length fields fail fast', () => {
    const cases: [string, Uint8Array][] = [];
    for (const h of [0, 1, 2, 100, headerLength - 1, headerLength + 1, base.length - 16, base.length - 15, base.length, 2 ** 31, 0xffffffff]) {
      const b = base.slice();
      new DataView(b.buffer).setUint32(8, h, true);
      cases.push([`header length ${h}`, b]);
      cases.push([`header length ${h}, crc fixed`, fixFileCrc(b.slice())]);
    }
    const t0 = performance.now();
    expectAllRejected(cases);
    expect(performance.now() - t0).toBeLessThan(1000);
    const huge = base.slice();
    new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
    expectNamedError(() => decodeContainer(huge), 'MsnFormatError', /header length field says 4294967295 bytes/);
  });

  it('bad magic, and a newer magic asks for an upgrade', () => {
    expectNamedError(() => decodeContainer(enc('PK\u0003\u0004 not a checkpoint at all')), 'MsnFormatError', /does not start with 'MSNCKPT1'/);
    const v2 = base.slice();
    v2[7] = '2'.charCodeAt(0);
    expectNamedError(() => decodeContainer(v2), 'MsnFormatError', /newer container version.*upgrade msn-web/);
  });

  /** Structural lies with both checksums correct: only validation can catch them. */
  type Mutation = [string, (h: Record<string, any>) => void, RegExp];
  const t0 = (h: Record<string, any>) => h.tensors[0];
  const mutations: Mutation[] = [
    ['format_version 2', (h) => (h.format_version = 2), /format_version 2 is newer.*upgrade/],
    ['format_version "1"', (h) => (h.format_version = '1'), /format_version/],
    ['format_version missing', (h) => delete h.format_version, /format_version/],
    ['kind missing', (h) => delete h.kind, /kind/],
    ['kind empty', (h) => (h.kind = ''), /kind/],
    ['kind number', (h) => (h.kind = 7), /kind/],
    ['meta missing', (h) => delete h.meta, /no meta/],
    ['tensors missing', (h) => delete h.tensors, /tensors entry is undefined/],
    ['tensors object', (h) => (h.tensors = {}), /expected an array/],
    ['tensor entry null', (h) => (h.tensors[1] = null), /tensors\[1\] is null/],
    ['tensor entry array', (h) => (h.tensors[1] = []), /tensors\[1\] is an array/],
    ['payload_bytes missing', (h) => delete h.payload_bytes, /payload_bytes/],
    ['payload_bytes too big', (h) => (h.payload_bytes += 4), /describes \d+ data bytes but \d+ follow/],
    ['payload_bytes huge', (h) => (h.payload_bytes = 2 ** 52), /describes/],
    ['payload_bytes odd', (h) => (h.payload_bytes = 6), /multiple of 4/],
    ['payload_bytes negative', (h) => (h.payload_bytes = -4), /payload_bytes/],
    ['name empty', (h) => (t0(h).name = ''), /name is the string "", expected a non-empty string/],
    ['name number', (h) => (t0(h).name = 3), /name is 3/],
    ['name missing', (h) => delete t0(h).name, /name is undefined/],
    ['duplicate name', (h) => (h.tensors[1].name = t0(h).name), /appears twice/],
    ['dtype float64', (h) => (t0(h).dtype = 'float64'), /dtype.*only 'float32'/],
    ['dtype missing', (h) => delete t0(h).dtype, /dtype/],
    ['shape missing', (h) => delete t0(h).shape, /shape undefined/],
    ['shape string', (h) => (t0(h).shape = '4,3,5'), /shape the string/],
    ['shape negative dim', (h) => (t0(h).shape = [-4, -3, 5]), /dimension -4/],
    ['shape fractional dim', (h) => (t0(h).shape = [4, 1.5, 10]), /dimension 1.5/],
    ['shape string dim', (h) => (t0(h).shape = [4, '3', 5]), /dimension the string "3"/],
    ['shape null dim', (h) => (t0(h).shape = [4, null, 5]), /dimension null/],
    ['shape 1e300', (h) => (t0(h).shape = [1e300]), /dimension 1e\+300/],
    ['shape product lies', (h) => (t0(h).shape = [4, 3, 6]), /length 60 but its shape holds 72/],
    ['shape product huge', (h) => (t0(h).shape = [1e9, 1e9, 1e9]), /data section holds only/],
    ['shape product huge with length', (h) => ((t0(h).shape = [2 ** 26, 2 ** 26]), (t0(h).length = 2 ** 52)), /data section holds only/],
    ['scalar with length 2', (h) => (h.tensors[3].length = 2), /length 2 but its shape holds 1/],
    ['length missing', (h) => delete t0(h).length, /length undefined/],
    ['length huge', (h) => ((t0(h).shape = [2 ** 40]), (t0(h).length = 2 ** 40)), /data section holds only/],
    ['length negative', (h) => (t0(h).length = -60), /length -60/],
    ['offset unaligned', (h) => (h.tensors[1].offset += 2), /offset \d+, expected a non-negative multiple of 4/],
    ['offset negative', (h) => (t0(h).offset = -4), /offset -4/],
    ['offset string', (h) => (t0(h).offset = '0'), /offset the string/],
    ['offset past end', (h) => (h.tensors[4].offset = h.payload_bytes), /spans bytes/],
    ['offset huge', (h) => (t0(h).offset = 2 ** 52), /spans bytes/],
    ['offset overlapping', (h) => (h.tensors[1].offset = 8), /overlap/],
    ['same offset twice', (h) => (h.tensors[4].offset = h.tensors[1].offset), /overlap/],
    ['crc32 missing', (h) => delete t0(h).crc32, /crc32 undefined/],
    ['crc32 negative', (h) => (t0(h).crc32 = -1), /crc32 -1/],
    ['crc32 too big', (h) => (t0(h).crc32 = 2 ** 32), /crc32/],
    ['crc32 wrong', (h) => (t0(h).crc32 = (t0(h).crc32 + 1) % 2 ** 32), /"encoder.patch_embed.weight" fails its checksum.*restore the previous checkpoint/],
  ];

  it.each(mutations)('crafted header: %s', (_label, mutate, message) => {
    const header = structuredClone(baseHeader);
    mutate(header);
    expectNamedError(() => decodeContainer(assemble(header, basePayload)), 'MsnFormatError', message);
  });

  it('unmodified reassembly decodes (the crafting helper is faithful)', () => {
    expect(assemble(baseHeader, basePayload)).toEqual(base);
  });

  it('non-JSON, non-object, invalid UTF-8 headers and dirty padding', () => {
    const text = JSON.stringify(baseHeader);
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated JSON', assemble(text.slice(0, -1), basePayload), /not valid UTF-8 JSON/],
      ['trailing garbage', assemble(`${text}x`, basePayload), /not valid UTF-8 JSON/],
      ['array header', assemble('[1,2,3]', basePayload), /header is an array/],
      ['null header', assemble('null', basePayload), /header is null/],
      ['number header', assemble('42', basePayload), /header is 42/],
      ['invalid UTF-8', assemble(Uint8Array.from([...enc(text.slice(0, -2)), 0xff, 0x7d]), basePayload), /not valid UTF-8 JSON/],
      [
        'eval bait',
        assemble(`{"format_version":1,"kind":"k","meta":"(function(){throw 1})()","payload_bytes":${basePayload.length}}`, basePayload),
        /tensors entry is undefined/,
      ],
    ];
    // Trailing JSON whitespace is harmless; use it to force 3 padding bytes, then make them dirty.
    let padded = text;
    while ((16 + padded.length) % 4 !== 1) padded += ' ';
    cases.push(['nonzero padding', assemble(padded, basePayload, { padByte: 0x20 }), /padding byte \d+ after the header is 32/]);
    expect(decodeContainer(assemble(padded, basePayload)).kind).toBe('msn-checkpoint');
    for (const [label, bytes, message] of cases) {
      const err = catchError(() => decodeContainer(bytes));
      expect(err.name, `${label}: ${err.message}`).toBe('MsnFormatError');
      expect(err.message, label).toMatch(message);
    }
  });

  it('deeply nested meta either decodes or is an MsnFormatError, never a RangeError', () => {
    const depth = 200_000;
    const text = `{"format_version":1,"kind":"k","meta":${'['.repeat(depth)}${']'.repeat(depth)},"payload_bytes":0,"tensors":[]}`;
    const o = outcome(() => decodeContainer(assemble(text, new Uint8Array(0))));
    expect(['ok', 'MsnFormatError']).toContain(o);
  });

  it('NaN / Infinity injected with both checksums recomputed names the tensor: every position of every tensor', () => {
    const rng = new Rng(13);
    const refs = baseHeader.tensors as { name: string; offset: number; length: number }[];
    const specials = [NaN, Infinity, -Infinity];
    let count = 0;
    for (const [t, ref] of refs.entries()) {
      for (let i = 0; i < ref.length; i++) {
        const value = specials[rng.nextUint32() % 3];
        const payload = basePayload.slice();
        const pv = new DataView(payload.buffer);
        pv.setFloat32(ref.offset + i * 4, value, true);
        if (value !== value && rng.nextUint32() % 2) pv.setUint32(ref.offset + i * 4, 0x7fc00000 | (rng.nextUint32() & 0x3fffff) | ((rng.nextUint32() & 1) << 31), true);
        const header = structuredClone(baseHeader);
        (header.tensors as { crc32: number }[])[t].crc32 = crc32(payload, ref.offset, ref.offset + ref.length * 4);
        const err = catchError(() => decodeContainer(assemble(header, payload)));
        expect(err.name).toBe('MsnFormatError');
        expect(err.message).toContain(`tensor ${JSON.stringify(ref.name)} holds ${value} at index ${i}`);
        count++;
      }
    }
    expect(count).toBe(60 + 5 + 1 + 30);
  });

  it('hostile sizes fail before allocation (a 2^52-element claim in a tiny file is instant)', () => {
    const header = structuredClone(baseHeader);
    header.payload_bytes = 2 ** 52;
    const small = assemble(header, basePayload);
    const started = performance.now();
    for (let i = 0; i < 1000; i++) catchError(() => decodeContainer(small));
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('fuzz: random structural lies with recomputed checksums (300 seeded cases)', () => {
    const rng = new Rng(14);
    const junk: unknown[] = [-1, -4, 1.5, 2 ** 53, 1e308, '0', null, true, [], {}, [1, 2], 'float32', ''];
    const fields = ['name', 'dtype', 'shape', 'offset', 'length', 'crc32'];
    const bad: string[] = [];
    for (let k = 0; k < 300; k++) {
      const header = structuredClone(baseHeader);
      const tensors = header.tensors as Record<string, unknown>[];
      const t = rng.nextUint32() % tensors.length;
      const field = fields[rng.nextUint32() % fields.length];
      let value = junk[rng.nextUint32() % junk.length];
      // Keep values that could be legitimate for the field out of the draw.
      if (field === 'dtype' && value === 'float32') value = 'int8';
      if (field === 'name' && typeof value === 'string' && value !== '') value = 42;
      if (field === 'shape' && Array.isArray(value)) value = value.length === 0 ? [7, 7] : [2 ** 40, 2 ** 40];
      tensors[t][field] = value;
      const o = outcome(() => decodeContainer(assemble(header, basePayload)));
      if (o !== 'MsnFormatError') bad.push(`tensors[${t}].${field} = ${JSON.stringify(value)}: ${o}`);
    }
    expect(bad).toEqual([]);
  });
});
