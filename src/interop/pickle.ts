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
import { readUintLE } from '../util/bytes.js';

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
  const m = new Machine(bytes, opts);
  for (let ops = 0; ; ops++) {
    if (ops >= m.limits.maxOps) fail(m.pos, `more than ${m.limits.maxOps} opcodes`);
    m.opPos = m.pos;
    const op = m.u8();
    if (op === STOP) return m.stop();
    const done = framingOp(m, op) || scalarOp(m, op) || containerOp(m, op) || memoOp(m, op) || callOp(m, op);
    if (!done) {
      m.fail(`opcode 0x${op.toString(16).padStart(2, '0')}${OPCODE_NAMES[op] ? ` (${OPCODE_NAMES[op]})` : ''} is not supported by this restricted unpickler`);
    }
  }
}

const STOP = 0x2e;

/**
 * The unpickler's state: the input with its read position, the value stack
 * (with the stacks MARK set aside), the memo, and every limit. Every read and
 * every growth goes through a method here that checks its bound first.
 */
class Machine {
  pos = 0;
  /** Where the current opcode starts; every error names it. */
  opPos = 0;
  stack: PyValue[] = [];
  readonly marks: PyValue[][] = [];
  readonly memo = new Map<number, PyValue>();
  readonly limits: Required<UnpickleLimits>;

  constructor(
    readonly bytes: Uint8Array,
    readonly opts: UnpickleOptions,
  ) {
    this.limits = {
      maxOps: opts.maxOps ?? 50_000_000,
      maxStack: opts.maxStack ?? 1_000_000,
      maxMarkDepth: opts.maxMarkDepth ?? 10_000,
      maxMemo: opts.maxMemo ?? 10_000_000,
      maxContainer: opts.maxContainer ?? 10_000_000,
      maxStringBytes: opts.maxStringBytes ?? 16 * 1024 * 1024,
    };
  }

  fail(msg: string): never {
    return fail(this.opPos, msg);
  }

  // -- reading the input

  need(k: number): void {
    if (k < 0 || this.pos + k > this.bytes.length) this.fail(`truncated: needs ${k} more bytes, ${this.bytes.length - this.pos} left`);
  }
  /** Unsigned little-endian integer of k bytes (k <= 8; above 2^53 is refused). */
  uint(k: number): number {
    this.need(k);
    const v = readUintLE(this.bytes, this.pos, k);
    this.pos += k;
    if (v > Number.MAX_SAFE_INTEGER) this.fail('length field is an impossible 64-bit value');
    return v;
  }
  u8(): number {
    return this.uint(1);
  }
  u32(): number {
    return this.uint(4);
  }
  /** Signed 32-bit length that must not be negative. */
  len32(what: string): number {
    const v = this.uint(4) | 0;
    if (v < 0) this.fail(`negative ${what} length`);
    return v;
  }
  str(len: number, ascii: boolean): string {
    if (len > this.limits.maxStringBytes) this.fail(`string of ${len} bytes exceeds the ${this.limits.maxStringBytes}-byte limit`);
    this.need(len);
    const b = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    if (ascii) {
      // Python 2 `str` (protocol <= 2, SHORT_BINSTRING/BINSTRING): decoded as ASCII like Python 3 does.
      for (let i = 0; i < b.length; i++) if (b[i] > 0x7f) this.fail('non-ASCII byte string');
      return asciiDecode(b);
    }
    try {
      return utf8.decode(b);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }
  /** Text line up to '\n' (for GLOBAL); bounded to keep scans cheap. */
  line(): string {
    const rel = this.bytes.subarray(this.pos, this.pos + 1025).indexOf(0x0a);
    if (rel < 0) this.fail('unterminated or overlong text argument');
    const end = this.pos + rel;
    const s = this.str(end - this.pos, true);
    this.pos = end + 1;
    return s;
  }
  /** Two's-complement little-endian integer; number when safe, else bigint. */
  long(len: number): number | bigint {
    if (len > 64) this.fail(`integer of ${len} bytes is too large`);
    this.need(len);
    if (len === 0) return 0;
    let v = 0n;
    for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.bytes[this.pos + i]);
    if (this.bytes[this.pos + len - 1] & 0x80) v -= 1n << BigInt(8 * len);
    this.pos += len;
    return normInt(v);
  }

  // -- the stack

  push(v: PyValue): void {
    if (this.stack.length >= this.limits.maxStack) this.fail(`value stack exceeds ${this.limits.maxStack} items`);
    this.stack.push(v);
  }
  pop(): PyValue {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack.pop() as PyValue;
  }
  /** The top k items, in stack order. */
  popN(k: number): PyValue[] {
    if (this.stack.length < k) this.fail('stack underflow');
    return this.stack.splice(this.stack.length - k, k);
  }
  top(): PyValue {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }
  mark(): void {
    if (this.marks.length >= this.limits.maxMarkDepth) this.fail(`MARKs nested deeper than ${this.limits.maxMarkDepth}`);
    this.marks.push(this.stack);
    this.stack = [];
  }
  /** Items pushed since the last MARK; restores the enclosing stack. */
  popMark(): PyValue[] {
    const outer = this.marks.pop();
    if (outer === undefined) this.fail('no MARK to pop to');
    const items = this.stack;
    this.stack = outer;
    return items;
  }
  stop(): PyValue {
    const result = this.pop();
    if (this.stack.length !== 0 || this.marks.length !== 0) this.fail('STOP with leftover stack items or open MARKs');
    if (this.pos !== this.bytes.length) this.fail(`${this.bytes.length - this.pos} trailing bytes after STOP`);
    return result;
  }

  // -- bounded growth

  grow(len: number): void {
    if (len > this.limits.maxContainer) this.fail(`container exceeds ${this.limits.maxContainer} elements`);
  }
  memoPut(idx: number): void {
    if (!this.memo.has(idx) && this.memo.size >= this.limits.maxMemo) this.fail(`memo exceeds ${this.limits.maxMemo} entries`);
    this.memo.set(idx, this.top());
  }
  memoGet(idx: number): void {
    if (!this.memo.has(idx)) this.fail(`memo key ${idx} was never stored`);
    this.push(this.memo.get(idx) as PyValue);
  }
}

/** PROTO, FRAME and the opcodes that only move stack items around. */
function framingOp(m: Machine, op: number): boolean {
  switch (op) {
    case 0x80: { // PROTO
      const v = m.u8();
      if (v > 5) m.fail(`unsupported pickle protocol ${v}`);
      return true;
    }
    case 0x95: m.uint(8); return true; // FRAME (protocol 4): only a length hint; the data follows inline.
    case 0x28: m.mark(); return true; // MARK
    case 0x30: m.pop(); return true; // POP
    case 0x31: m.popMark(); return true; // POP_MARK
    case 0x32: m.push(m.top()); return true; // DUP
    default: return false;
  }
}

/** None, bools, ints, floats and strings, read from the opcode's argument bytes. */
function scalarOp(m: Machine, op: number): boolean {
  switch (op) {
    case 0x4e: m.push(null); return true; // NONE
    case 0x88: m.push(true); return true; // NEWTRUE
    case 0x89: m.push(false); return true; // NEWFALSE
    case 0x4a: m.push(m.uint(4) | 0); return true; // BININT
    case 0x4b: m.push(m.u8()); return true; // BININT1
    case 0x4d: m.push(m.uint(2)); return true; // BININT2
    case 0x8a: m.push(m.long(m.u8())); return true; // LONG1
    case 0x8b: m.push(m.long(m.len32('LONG4'))); return true; // LONG4
    case 0x47: { // BINFLOAT: big-endian IEEE double
      m.need(8);
      const dv = new DataView(m.bytes.buffer, m.bytes.byteOffset + m.pos, 8);
      m.push(dv.getFloat64(0, false));
      m.pos += 8;
      return true;
    }
    case 0x58: m.push(m.str(m.u32(), false)); return true; // BINUNICODE
    case 0x8c: m.push(m.str(m.u8(), false)); return true; // SHORT_BINUNICODE
    case 0x8d: m.push(m.str(m.uint(8), false)); return true; // BINUNICODE8
    case 0x55: m.push(m.str(m.u8(), true)); return true; // SHORT_BINSTRING
    case 0x54: m.push(m.str(m.len32('BINSTRING'), true)); return true; // BINSTRING
    default: return false;
  }
}

/** Lists, tuples and dicts: built empty or from MARKed items, then filled; every size is capped. */
function containerOp(m: Machine, op: number): boolean {
  switch (op) {
    case 0x7d: m.push(new PyDict(false)); return true; // EMPTY_DICT
    case 0x5d: m.push([]); return true; // EMPTY_LIST
    case 0x29: m.push(new PyTuple([])); return true; // EMPTY_TUPLE
    case 0x74: m.push(tuple(m, m.popMark())); return true; // TUPLE
    case 0x85: m.push(tuple(m, m.popN(1))); return true; // TUPLE1
    case 0x86: m.push(tuple(m, m.popN(2))); return true; // TUPLE2
    case 0x87: m.push(tuple(m, m.popN(3))); return true; // TUPLE3
    case 0x6c: { // LIST
      const items = m.popMark();
      m.grow(items.length);
      m.push(items);
      return true;
    }
    case 0x64: { // DICT
      const items = m.popMark();
      const d = new PyDict(false);
      setItems(m, d, items);
      m.push(d);
      return true;
    }
    case 0x61: { const items = m.popN(1); append(m, m.top(), items); return true; } // APPEND
    case 0x65: { const items = m.popMark(); append(m, m.top(), items); return true; } // APPENDS
    case 0x73: { const kv = m.popN(2); setItems(m, m.top(), kv); return true; } // SETITEM
    case 0x75: { const items = m.popMark(); setItems(m, m.top(), items); return true; } // SETITEMS
    default: return false;
  }
}

function tuple(m: Machine, items: PyValue[]): PyTuple {
  m.grow(items.length);
  return new PyTuple(items);
}

function append(m: Machine, l: PyValue, items: PyValue[]): void {
  if (!Array.isArray(l)) m.fail('APPEND target is not a list');
  m.grow(l.length + items.length);
  for (const v of items) l.push(v);
}

function setItems(m: Machine, d: PyValue, kv: PyValue[]): void {
  if (!(d instanceof PyDict)) m.fail('SETITEM target is not a dict');
  if (kv.length % 2 !== 0) m.fail('SETITEMS needs key/value pairs');
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i];
    if (!isKey(k)) m.fail('dict key is not a str/int/float/bool/None');
    d.map.set(normKey(k), kv[i + 1]);
    m.grow(d.map.size);
  }
}

/** The memo: PUT stores the top of the stack under an index, GET pushes it again (shared references). */
function memoOp(m: Machine, op: number): boolean {
  switch (op) {
    case 0x71: m.memoPut(m.u8()); return true; // BINPUT
    case 0x72: m.memoPut(m.u32()); return true; // LONG_BINPUT
    case 0x94: m.memoPut(m.memo.size); return true; // MEMOIZE (protocol 4)
    case 0x68: m.memoGet(m.u8()); return true; // BINGET
    case 0x6a: m.memoGet(m.u32()); return true; // LONG_BINGET
    default: return false;
  }
}

/**
 * The opcodes that would run code in Python: GLOBAL resolves only
 * whitelisted names, REDUCE calls only what GLOBAL resolved, BINPERSID goes to
 * the caller's persistent_load, BUILD only sets OrderedDict attributes.
 */
function callOp(m: Machine, op: number): boolean {
  switch (op) {
    case 0x63: { const module = m.line(); resolveGlobal(m, module, m.line()); return true; } // GLOBAL "module\nname\n"
    case 0x93: { // STACK_GLOBAL (protocol 4)
      const name = m.pop();
      const module = m.pop();
      if (typeof name !== 'string' || typeof module !== 'string') m.fail('STACK_GLOBAL needs two strings');
      resolveGlobal(m, module, name);
      return true;
    }
    case 0x52: { // REDUCE: callable(*args), only for whitelisted globals
      const args = m.pop();
      const fn = m.pop();
      if (!(fn instanceof PyGlobal)) m.fail('REDUCE on something that is not a whitelisted global');
      if (!(args instanceof PyTuple)) m.fail(`REDUCE arguments for ${fn.qualname} are not a tuple`);
      m.push(fn.call(args.items));
      return true;
    }
    case 0x51: { // BINPERSID
      const pid = m.pop();
      if (!m.opts.persistentLoad) m.fail('persistent ids are not allowed here');
      m.push(m.opts.persistentLoad(pid));
      return true;
    }
    case 0x62: { const state = m.pop(); build(m, m.top(), state); return true; } // BUILD: obj.__setstate__(state)
    default: return false;
  }
}

function resolveGlobal(m: Machine, module: string, name: string): void {
  const q = `${module}.${name}`;
  const fn = (m.opts.globals ?? BUILTIN_GLOBALS).get(q);
  if (fn === undefined) {
    m.fail(`global "${q}" is refused for safety: only pure-data torch/collections constructors are allowed (this file may contain code)`);
  }
  m.push(new PyGlobal(q, fn));
}

/**
 * BUILD is only meaningful for OrderedDict here: torch's state_dict() carries
 * a `_metadata` attribute (module versions), pickled as instance state. We
 * keep string-keyed attributes aside (never mixed into the dict's items).
 */
function build(m: Machine, obj: PyValue, state: PyValue): void {
  if (!(obj instanceof PyDict) || !obj.ordered) m.fail('BUILD is only supported on OrderedDict');
  let dictState: PyValue = state;
  if (state instanceof PyTuple) {
    if (state.items.length !== 2 || state.items[1] !== null) m.fail('OrderedDict BUILD with slot state is not supported');
    dictState = state.items[0];
  }
  if (dictState === null) return;
  if (!(dictState instanceof PyDict)) m.fail('OrderedDict BUILD state is not a dict');
  for (const [k, v] of dictState.map) {
    if (typeof k !== 'string') m.fail('OrderedDict attribute name is not a string');
    obj.attrs ??= new Map();
    obj.attrs.set(k, v);
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
