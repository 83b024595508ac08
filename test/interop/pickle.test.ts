import { describe, expect, it } from 'vitest';
import { PyDict, PyTuple, unpickle, type PyValue } from '../../src/interop/pickle.js';
import { fromHex, PickleWriter, err } from './builders.js';

/**
 * Made with CPython 3.11 `pickle.dumps(obj, protocol=p)` for
 * obj = {'a': [1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**40, -2**70, 1.5, -0.0, None, True, False,
 *              'é€😀', (1, 2), (), (1,), (1, 2, 3, 4)],
 *        'b': OrderedDict([('x', 1), ('y', [])]), 3: 'three'};  obj['c'] = obj['a']
 */
const PY2 =
  '80027d71002858010000006171015d7102284b014affffffff4bff4d00014dffff4a000001004a000000808a0500000080008a060000000000018a090000000000000000c0473ff80000000000004780000000000000004e88895809000000c3a9e282acf09f988071034b014b02867104294b01857105284b014b024b034b0474710665580100000062710763636f6c6c656374696f6e730a4f726465726564446963740a71082952710928580100000078710a4b01580100000079710b5d710c754b0358050000007468726565710d580100000063710e6802752e';
const PY4 =
  '800495ba000000000000007d94288c0161945d94284b014affffffff4bff4d00014dffff4a000001004a000000808a0500000080008a060000000000018a090000000000000000c0473ff80000000000004780000000000000004e88898c09c3a9e282acf09f9880944b014b028694294b018594284b014b024b034b047494658c0162948c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c0178944b018c0179945d94754b038c057468726565948c0163946802752e';
/** `pickle.dumps({'x': E(os.system, 'echo pwned')})` and `pickle.dumps(E(builtins.eval, '1+1'))`, E.__reduce__ = (f, (arg,)). */
const EXPLOITS: Array<[string, string]> = [
  ['posix.system', '80027d7100580100000078710163706f7369780a73797374656d0a7102580a0000006563686f2070776e65647103857104527105732e'],
  ['__builtin__.eval', '8002635f5f6275696c74696e5f5f0a6576616c0a71005803000000312b3171018571025271032e'],
  ['posix.system', '8004952c000000000000007d948c0178948c05706f736978948c0673797374656d9493948c0a6563686f2070776e65649485945294732e'],
  ['builtins.eval', '8004951f000000000000008c086275696c74696e73948c046576616c9493948c03312b3194859452942e'],
];

/** Recursively turn Py* values into comparable JS (dict → entries array). */
function plain(v: PyValue): unknown {
  if (v instanceof PyDict) return { ordered: v.ordered, entries: [...v.map].map(([k, x]) => [k, plain(x)]) };
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

describe('unpickle', () => {
  it.each([
    ['protocol 2', PY2],
    ['protocol 4', PY4],
  ])('matches CPython semantics for %s', (_, hex) => {
    const root = unpickle(fromHex(hex));
    const a = [
      1, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31, 2 ** 40, -(2n ** 70n), 1.5, -0, null, true, false, 'é€😀',
      { tuple: [1, 2] }, { tuple: [] }, { tuple: [1] }, { tuple: [1, 2, 3, 4] },
    ];
    expect(plain(root)).toEqual({
      ordered: false,
      entries: [
        ['a', a],
        ['b', { ordered: true, entries: [['x', 1], ['y', []]] }],
        [3, 'three'],
        ['c', a],
      ],
    });
    // Memoised references stay the same object, as in Python.
    const d = (root as PyDict).map;
    expect(d.get('c')).toBe(d.get('a'));
    expect(Object.is((d.get('a') as PyValue[])[11], -0)).toBe(true);
  });

  it.each(EXPLOITS)('refuses %s at the GLOBAL opcode', (name, hex) => {
    expect(err(() => unpickle(fromHex(hex)))).toMatch(new RegExp(`^MsnFormatError: pickle: global "${name.replace('.', '\\.')}" is refused for safety`));
  });

  it('enforces its limits', () => {
    const w = () => new PickleWriter().proto();
    const deepMarks = w();
    for (let i = 0; i < 50; i++) deepMarks.mark();
    expect(err(() => unpickle(deepMarks.bytes(), { maxMarkDepth: 10 }))).toMatch(/MARKs nested deeper than 10/);
    const wide = w().emptyList().mark();
    for (let i = 0; i < 20; i++) wide.int(i);
    expect(err(() => unpickle(wide.appends().stop().bytes(), { maxContainer: 10 }))).toMatch(/container exceeds 10/);
    const tall = w();
    for (let i = 0; i < 20; i++) tall.none();
    expect(err(() => unpickle(tall.bytes(), { maxStack: 10 }))).toMatch(/value stack exceeds 10/);
    const memo = w().none();
    for (let i = 0; i < 20; i++) memo.put(i);
    expect(err(() => unpickle(memo.bytes(), { maxMemo: 10 }))).toMatch(/memo exceeds 10/);
    expect(err(() => unpickle(w().str('x'.repeat(100)).stop().bytes(), { maxStringBytes: 99 }))).toMatch(/exceeds the 99-byte limit/);
    expect(err(() => unpickle(w().none().pop().none().stop().bytes(), { maxOps: 3 }))).toMatch(/more than 3 opcodes/);
    // A length field far beyond the data fails as truncation, without allocating.
    expect(err(() => unpickle(fromHex('800258ffffff7f')))).toMatch(/exceeds the|truncated/);
    expect(err(() => unpickle(fromHex('8002580000100061')))).toMatch(/truncated/);
  });

  it('rejects malformed streams with positions', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /truncated/],
      ['8002', /truncated/],
      ['80022e', /stack underflow/],
      ['80024e4e2e', /leftover/],
      ['80024e2e00', /trailing bytes/],
      ['8002682a', /memo key 42/],
      ['8002744e2e', /no MARK/],
      ['80024e4b0161', /not a list/],
      ['80027d5d4b0173', /dict key/], // list as a key
      ['8002290052', /opcode 0x00|stack underflow/],
      ['800249', /opcode 0x49 \(INT\)/],
      ['800243', /opcode 0x43 \(SHORT_BINBYTES\)/],
      ['8002630a0a2e', /global "\." is refused/],
      ['80024e4e522e', /not a whitelisted global/],
      ['80024e512e', /persistent ids are not allowed/],
      ['8002580200000080802e', /not valid UTF-8/],
      ['80028aff', /too large/],
      ['8006', /protocol 6/],
    ];
    for (const [hex, re] of cases) {
      const m = err(() => unpickle(fromHex(hex)));
      expect(m, hex).toMatch(/^MsnFormatError: pickle: /);
      expect(m, hex).toMatch(re);
    }
  });
});
