/**
 * A restricted, data-only unpickler.
 *
 * Python's pickle is a small stack machine whose GLOBAL/REDUCE opcodes can
 * call any importable function — loading an untrusted pickle with Python is
 * arbitrary code execution. This interpreter never evaluates anything: GLOBAL
 * resolves only names present in a caller-supplied whitelist of pure-data
 * constructors (JS functions that build plain values), everything else is
 * refused by name. It implements the opcodes `torch.save` emits (protocol 2)
 * plus their close relatives from protocols 0–4 that carry plain data.
 *
 * Hostile input is expected: every read is bounds-checked, and the stack,
 * mark depth, memo, container sizes, string lengths and total op count are
 * capped, so a malformed pickle fails fast with `MsnFormatError`.
 */
import { MsnFormatError } from '../errors.js';

/** A Python tuple (kept distinct from lists while unpickling). */
export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}
/** Hashable scalar keys only; tuple keys are refused (torch never writes them). */
export type PyKey = string | number | bigint | boolean | null;
/** A dict or OrderedDict; insertion order is preserved by the Map. */
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  /** Instance attributes set by BUILD (e.g. a state_dict's `_metadata`). */
  attrs: Map<string, PyValue> | null = null;
  constructor(readonly ordered: boolean) {}
}
/** A whitelisted global, as pushed by GLOBAL; only REDUCE may call it. */
export class PyGlobal {
  constructor(
    readonly qualname: string,
    readonly call: GlobalFn,
  ) {}
}
/** A value produced by a whitelisted global or persistent_load (e.g. a tensor). */
export class PyExternal<T = unknown> {
  constructor(
    readonly tag: string,
    readonly value: T,
  ) {}
}
export type PyValue = null | boolean | number | bigint | string | PyValue[] | PyTuple | PyDict | PyGlobal | PyExternal;
export type GlobalFn = (args: readonly PyValue[]) => PyValue;

export interface UnpickleLimits {
  /** Max opcodes executed (default 50 000 000). */
  maxOps?: number;
  /** Max items on the value stack (default 1 000 000). */
  maxStack?: number;
  /** Max nested MARKs (default 10 000). */
  maxMarkDepth?: number;
  /** Max memo entries (default 10 000 000). */
  maxMemo?: number;
  /** Max elements in one list/tuple/dict (default 10 000 000). */
  maxContainer?: number;
  /** Max bytes in one string (default 16 MiB). */
  maxStringBytes?: number;
}
export interface UnpickleOptions extends UnpickleLimits {
  /**
   * Whitelisted globals, keyed `"module.name"`. `collections.OrderedDict` is
   * always available. Anything not listed is refused at the GLOBAL opcode.
   */
  globals?: ReadonlyMap<string, GlobalFn>;
  /** Resolves BINPERSID ids (torch storages). Without it BINPERSID is refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Names of real opcodes we deliberately leave out, for clearer errors. */
const OPCODE_NAMES: Record<number, string> = {
  0x50: 'PERSID', 0x6f: 'OBJ', 0x69: 'INST', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x67: 'GET', 0x70: 'PUT',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8e: 'BINBYTES8', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
  0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
};
function fail(pos: number, msg: string): never {
  throw new MsnFormatError(`pickle: ${msg} (at byte ${pos})`);
}

/** Built-in whitelist entries: pure data, no code. */
export const BUILTIN_GLOBALS: ReadonlyMap<string, GlobalFn> = new Map<string, GlobalFn>([
  [
    'collections.OrderedDict',
    (args) => {
      if (args.length !== 0) throw new MsnFormatError('pickle: OrderedDict() is only supported without arguments');
      return new PyDict(true);
    },
  ],
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether a value can be a dict key here. */
function isKey(v: PyValue): v is PyKey {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean';
}

/** Run the pickle in `bytes` and return the object STOP yields. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  const maxOps = opts.maxOps ?? 50_000_000;
  const maxStack = opts.maxStack ?? 1_000_000;
  const maxMarkDepth = opts.maxMarkDepth ?? 10_000;
  const maxMemo = opts.maxMemo ?? 10_000_000;
  const maxContainer = opts.maxContainer ?? 10_000_000;
  const maxString = opts.maxStringBytes ?? 16 * 1024 * 1024;
  const globals = opts.globals ?? BUILTIN_GLOBALS;

  const n = bytes.length;
  let pos = 0;
  let opPos = 0;
  let stack: PyValue[] = [];
  const marks: PyValue[][] = [];
  const memo = new Map<number, PyValue>();

  const need = (k: number): void => {
    if (k < 0 || pos + k > n) fail(opPos, `truncated: needs ${k} more bytes, ${n - pos} left`);
  };
  /** Unsigned little-endian integer of k bytes (k <= 8; above 2^53 is refused). */
  const uint = (k: number): number => {
    need(k);
    let v = 0;
    for (let i = k - 1; i >= 0; i--) v = v * 256 + bytes[pos + i];
    pos += k;
    if (v > Number.MAX_SAFE_INTEGER) fail(opPos, 'length field is an impossible 64-bit value');
    return v;
  };
  const u8 = () => uint(1);
  const u32 = () => uint(4);
  /** Signed 32-bit length that must not be negative. */
  const len32 = (what: string): number => {
    const v = uint(4) | 0;
    if (v < 0) fail(opPos, `negative ${what} length`);
    return v;
  };
  const str = (len: number, ascii: boolean): string => {
    if (len > maxString) fail(opPos, `string of ${len} bytes exceeds the ${maxString}-byte limit`);
    need(len);
    const b = bytes.subarray(pos, pos + len);
    pos += len;
    if (ascii) {
      // Python 2 `str` (protocol <= 2, SHORT_BINSTRING/BINSTRING): decoded as ASCII like Python 3 does.
      for (let i = 0; i < b.length; i++) if (b[i] > 0x7f) fail(opPos, 'non-ASCII byte string');
      return asciiDecode(b);
    }
    try {
      return utf8.decode(b);
    } catch {
      return fail(opPos, 'string is not valid UTF-8');
    }
  };
  /** Text line up to '\n' (for GLOBAL); bounded to keep scans cheap. */
  const line = (): string => {
    const rel = bytes.subarray(pos, pos + 1025).indexOf(0x0a);
    if (rel < 0) fail(opPos, 'unterminated or overlong text argument');
    const end = pos + rel;
    const s = str(end - pos, true);
    pos = end + 1;
    return s;
  };

  const push = (v: PyValue): void => {
    if (stack.length >= maxStack) fail(opPos, `value stack exceeds ${maxStack} items`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail(opPos, 'stack underflow');
    return stack.pop() as PyValue;
  };
  /** The top k items, in stack order. */
  const popN = (k: number): PyValue[] => {
    if (stack.length < k) fail(opPos, 'stack underflow');
    return stack.splice(stack.length - k, k);
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail(opPos, 'stack underflow');
    return stack[stack.length - 1];
  };
  /** Items pushed since the last MARK; restores the enclosing stack. */
  const popMark = (): PyValue[] => {
    const outer = marks.pop();
    if (outer === undefined) fail(opPos, 'no MARK to pop to');
    const items = stack;
    stack = outer;
    return items;
  };
  const memoPut = (idx: number): void => {
    if (!memo.has(idx) && memo.size >= maxMemo) fail(opPos, `memo exceeds ${maxMemo} entries`);
    memo.set(idx, top());
  };
  const memoGet = (idx: number): void => {
    if (!memo.has(idx)) fail(opPos, `memo key ${idx} was never stored`);
    push(memo.get(idx) as PyValue);
  };
  const grow = (len: number): void => {
    if (len > maxContainer) fail(opPos, `container exceeds ${maxContainer} elements`);
  };
  const append = (l: PyValue, items: PyValue[]): void => {
    if (!Array.isArray(l)) fail(opPos, 'APPEND target is not a list');
    grow(l.length + items.length);
    for (const v of items) l.push(v);
  };
  const setItems = (d: PyValue, kv: PyValue[]): void => {
    if (!(d instanceof PyDict)) fail(opPos, 'SETITEM target is not a dict');
    if (kv.length % 2 !== 0) fail(opPos, 'SETITEMS needs key/value pairs');
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i];
      if (!isKey(k)) fail(opPos, 'dict key is not a str/int/float/bool/None');
      d.map.set(normKey(k), kv[i + 1]);
      grow(d.map.size);
    }
  };
  const tuple = (items: PyValue[]): PyTuple => {
    grow(items.length);
    return new PyTuple(items);
  };
  const resolveGlobal = (module: string, name: string): void => {
    const q = `${module}.${name}`;
    const fn = globals.get(q);
    if (fn === undefined) {
      fail(opPos, `global "${q}" is refused for safety: only pure-data torch/collections constructors are allowed (this file may contain code)`);
    }
    push(new PyGlobal(q, fn));
  };

  for (let ops = 0; ; ops++) {
    if (ops >= maxOps) fail(pos, `more than ${maxOps} opcodes`);
    opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(opPos, `unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: uint(8); break; // FRAME (protocol 4): only a length hint; the data follows inline.
      case 0x2e: { // STOP
        const result = pop();
        if (stack.length !== 0 || marks.length !== 0) fail(opPos, 'STOP with leftover stack items or open MARKs');
        if (pos !== n) fail(opPos, `${n - pos} trailing bytes after STOP`);
        return result;
      }
      case 0x28: // MARK
        if (marks.length >= maxMarkDepth) fail(opPos, `MARKs nested deeper than ${maxMarkDepth}`);
        marks.push(stack);
        stack = [];
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(uint(4) | 0); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(uint(2)); break; // BININT2
      case 0x8a: push(readLong(u8())); break; // LONG1
      case 0x8b: push(readLong(len32('LONG4'))); break; // LONG4
      case 0x47: { // BINFLOAT: big-endian IEEE double
        need(8);
        const dv = new DataView(bytes.buffer, bytes.byteOffset + pos, 8);
        push(dv.getFloat64(0, false));
        pos += 8;
        break;
      }
      case 0x58: push(str(u32(), false)); break; // BINUNICODE
      case 0x8c: push(str(u8(), false)); break; // SHORT_BINUNICODE
      case 0x8d: push(str(uint(8), false)); break; // BINUNICODE8
      case 0x55: push(str(u8(), true)); break; // SHORT_BINSTRING
      case 0x54: push(str(len32('BINSTRING'), true)); break; // BINSTRING
      case 0x7d: push(new PyDict(false)); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: push(tuple(popN(1))); break; // TUPLE1
      case 0x86: push(tuple(popN(2))); break; // TUPLE2
      case 0x87: push(tuple(popN(3))); break; // TUPLE3
      case 0x6c: { // LIST
        const items = popMark();
        grow(items.length);
        push(items);
        break;
      }
      case 0x64: { // DICT
        const items = popMark();
        const d = new PyDict(false);
        setItems(d, items);
        push(d);
        break;
      }
      case 0x61: { const items = popN(1); append(top(), items); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const kv = popN(2); setItems(top(), kv); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE (protocol 4)
      case 0x68: memoGet(u8()); break; // BINGET
      case 0x6a: memoGet(u32()); break; // LONG_BINGET
      case 0x63: { const module = line(); resolveGlobal(module, line()); break; } // GLOBAL "module\nname\n"
      case 0x93: { // STACK_GLOBAL (protocol 4)
        const name = pop();
        const module = pop();
        if (typeof name !== 'string' || typeof module !== 'string') fail(opPos, 'STACK_GLOBAL needs two strings');
        resolveGlobal(module, name);
        break;
      }
      case 0x52: { // REDUCE: callable(*args), only for whitelisted globals
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal)) fail(opPos, 'REDUCE on something that is not a whitelisted global');
        if (!(args instanceof PyTuple)) fail(opPos, `REDUCE arguments for ${fn.qualname} are not a tuple`);
        push(fn.call(args.items));
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail(opPos, 'persistent ids are not allowed here');
        push(opts.persistentLoad(pid));
        break;
      }
      case 0x62: { const state = pop(); build(top(), state); break; } // BUILD: obj.__setstate__(state)
      default:
        fail(opPos, `opcode 0x${op.toString(16).padStart(2, '0')}${OPCODE_NAMES[op] ? ` (${OPCODE_NAMES[op]})` : ''} is not supported by this restricted unpickler`);
    }
  }

  /** Two's-complement little-endian integer; number when safe, else bigint. */
  function readLong(len: number): number | bigint {
    if (len > 64) fail(opPos, `integer of ${len} bytes is too large`);
    need(len);
    if (len === 0) return 0;
    let v = 0n;
    for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
    if (bytes[pos + len - 1] & 0x80) v -= 1n << BigInt(8 * len);
    pos += len;
    return normInt(v);
  }

  /**
   * BUILD is only meaningful for OrderedDict here: torch's state_dict() carries
   * a `_metadata` attribute (module versions), pickled as instance state. We
   * keep string-keyed attributes aside (never mixed into the dict's items).
   */
  function build(obj: PyValue, state: PyValue): void {
    if (!(obj instanceof PyDict) || !obj.ordered) fail(opPos, 'BUILD is only supported on OrderedDict');
    let dictState: PyValue = state;
    if (state instanceof PyTuple) {
      if (state.items.length !== 2 || state.items[1] !== null) fail(opPos, 'OrderedDict BUILD with slot state is not supported');
      dictState = state.items[0];
    }
    if (dictState === null) return;
    if (!(dictState instanceof PyDict)) fail(opPos, 'OrderedDict BUILD state is not a dict');
    for (const [k, v] of dictState.map) {
      if (typeof k !== 'string') fail(opPos, 'OrderedDict attribute name is not a string');
      obj.attrs ??= new Map();
      obj.attrs.set(k, v);
    }
  }
}

function asciiDecode(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** Python ints compare equal across widths; keep one JS representation per value. */
function normInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
function normKey(k: PyKey): PyKey {
  return typeof k === 'bigint' ? normInt(k) : k;
}
