/**
 * The one argument parser of the msn-web command line, on Node's
 * util.parseArgs. Each command declares its options (type, help, default)
 * and positionals in a CommandSpec; parseCommand() turns argv into values or
 * 'help', and usage() prints the command's help from the same declaration.
 *
 * Conventions: `--name value` and `--name=value`; `-h`/`--help` on every
 * command; `--` ends the options. An unknown option, a missing value, a value
 * given to a flag or a wrong number of positionals is a usage error
 * (MsnUsageError): main.ts exits 2 for those, 1 for every other failure.
 */
import { parseArgs } from 'node:util';
import { MsnConfigError } from '../errors.js';

/**
 * A mistake in the command line itself (not in the files it names). Keeps the
 * name 'MsnConfigError' of the library's error kinds; main.ts tells it apart
 * with instanceof.
 */
export class MsnUsageError extends MsnConfigError {
  readonly usage = true;
}

export const isUsageError = (e: unknown): e is MsnUsageError => e instanceof MsnUsageError;

export interface OptionSpec {
  type: 'string' | 'boolean';
  help: string;
  /** Placeholder of the value in the help, e.g. 'N' or 'DIR' (string options). */
  value?: string;
  /** Used when the option is absent; shown in the help. */
  default?: string;
  /** A one-letter alias. */
  short?: string;
}

export interface PositionalSpec {
  name: string;
  help: string;
}

export interface CommandSpec {
  /** The command word: 'pretrain', 'eval', ... */
  name: string;
  /** One line: what the command does. */
  summary: string;
  /** A shorter line for the list of commands (default: summary). */
  brief?: string;
  /** Extra paragraphs printed after the usage line. */
  description?: string;
  positionals?: PositionalSpec[];
  options: Record<string, OptionSpec>;
  /** Example invocations (without the program name). */
  examples?: string[];
}

export const PROGRAM = 'msn-web';

/** The parsed command line: the options given (not their defaults) and the positionals. */
export class ParsedArgs {
  constructor(
    readonly spec: CommandSpec,
    readonly values: ReadonlyMap<string, string | boolean>,
    readonly positionals: readonly string[],
  ) {}

  /** Whether the option was given on the command line. */
  has(name: string): boolean {
    this.known(name);
    return this.values.has(name);
  }

  /** A string option: its value, else its default, else undefined. */
  string(name: string): string | undefined {
    const o = this.known(name);
    const v = this.values.get(name);
    return typeof v === 'string' ? v : o.default;
  }

  /** A boolean option (a flag). */
  flag(name: string): boolean {
    this.known(name);
    return this.values.get(name) === true;
  }

  /** An integer >= min (undefined when absent and without default). */
  int(name: string, min: number): number | undefined {
    const raw = this.string(name);
    return raw === undefined ? undefined : integer(raw, name, min);
  }

  /** An integer >= 1 (undefined when absent and without default). */
  positive(name: string): number | undefined {
    const raw = this.string(name);
    return raw === undefined ? undefined : positiveInt(raw, name);
  }

  /** A comma-separated list of integers >= min, e.g. 1,2,5,10. */
  intList(name: string, min = 1): number[] | undefined {
    const raw = this.string(name);
    return raw === undefined ? undefined : integerList(raw, name, min);
  }

  /** One of the allowed words. */
  choice<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const raw = this.string(name);
    return raw === undefined ? undefined : choice(raw, name, allowed);
  }

  /** A comma-separated list of allowed words. */
  choiceList<T extends string>(name: string, allowed: readonly T[]): T[] | undefined {
    const raw = this.string(name);
    return raw === undefined ? undefined : choiceList(raw, name, allowed);
  }

  private known(name: string): OptionSpec {
    const o = this.spec.options[name];
    if (!o) throw new Error(`internal: ${this.spec.name} declares no option --${name}`);
    return o;
  }
}

const INT = /^[+-]?\d+$/;

/** `raw` as an integer >= min, or a usage error naming the option and the value. */
export function integer(raw: string, name: string, min: number): number {
  const v = Number(raw);
  if (!INT.test(raw.trim()) || !Number.isSafeInteger(v) || v < min) throw new MsnUsageError(`--${name} must be an integer >= ${min}, got '${raw}'.`);
  return v;
}

/** `raw` as an integer >= 1. */
export function positiveInt(raw: string, name: string): number {
  const v = Number(raw);
  if (!INT.test(raw.trim()) || !Number.isSafeInteger(v) || v < 1) throw new MsnUsageError(`--${name} must be a positive integer, got '${raw}'.`);
  return v;
}

/** A comma-separated list of integers >= min, like 1,2,5,10. */
export function integerList(raw: string, name: string, min = 1): number[] {
  const parts = raw.split(',');
  return parts.map((x) => {
    const v = Number(x);
    if (!INT.test(x.trim()) || !Number.isSafeInteger(v) || v < min) {
      const what = min === 1 ? 'positive integers' : `integers >= ${min}`;
      throw new MsnUsageError(`--${name} expects ${what} separated by commas, like 1,2,5,10; got '${raw}'${parts.length > 1 ? ` ('${x}' is not one)` : ''}.`);
    }
    return v;
  });
}

/** One of `allowed`. */
export function choice<T extends string>(raw: string, name: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) throw new MsnUsageError(`--${name} must be one of ${allowed.join(', ')}; got '${raw}'.`);
  return raw as T;
}

/** A comma-separated list of words from `allowed`. */
export function choiceList<T extends string>(raw: string, name: string, allowed: readonly T[]): T[] {
  return raw.split(',').map((x) => {
    if (!(allowed as readonly string[]).includes(x)) throw new MsnUsageError(`--${name}: unknown value '${x}' (one or more of ${allowed.join(', ')}, separated by commas).`);
    return x as T;
  });
}

/** Whether -h or --help appears before `--` (help wins over every other mistake). */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const head = end < 0 ? argv : argv.slice(0, end);
  return head.includes('-h') || head.includes('--help');
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help' };

/** A value that looks like a number, so `--seed -1` reaches the number check instead of "needs a value". */
const NUMBER_LIKE = /^-\.?\d/;

/**
 * Parses `argv` (the words after the command) against `spec`. Returns 'help'
 * when -h/--help appears before `--`. Throws MsnUsageError for an unknown
 * option, a missing value, a value given to a flag, or a wrong number of
 * positionals (every positional of the spec is required).
 */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): ParsedArgs | 'help' {
  if (wantsHelp(argv)) return 'help';
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(spec.options)) options[name] = o.short ? { type: o.type, short: o.short } : { type: o.type };
  // Non-strict, with tokens: the checks below give messages in this CLI's words.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const values = new Map<string, string | boolean>();
  const positionals: string[] = [];
  const names = Object.keys(spec.options);
  for (const t of tokens) {
    if (t.kind === 'positional') {
      positionals.push(t.value);
      continue;
    }
    if (t.kind !== 'option') continue;
    const o = spec.options[t.name];
    if (!o) {
      const known = names.map((n) => '--' + n).join(' ');
      throw new MsnUsageError(`unknown option ${t.rawName}. The options of ${PROGRAM} ${spec.name}: ${known || '(none)'} -h/--help.`);
    }
    const shown = t.rawName.startsWith('--') ? t.rawName : `${t.rawName} (--${t.name})`;
    if (o.type === 'boolean') {
      if (t.inlineValue) throw new MsnUsageError(`option ${shown} takes no value; got '${t.rawName}=${t.value}'.`);
      values.set(t.name, true);
      continue;
    }
    const v = t.value;
    if (v === undefined || (!t.inlineValue && v.startsWith('-') && v.length > 1 && !NUMBER_LIKE.test(v))) {
      throw new MsnUsageError(`option ${shown} needs a value${v === undefined ? '' : ` (got the option '${v}'; use ${t.rawName}=${v} if that is meant as the value)`}.`);
    }
    values.set(t.name, v);
  }
  const want = spec.positionals ?? [];
  if (positionals.length !== want.length) {
    if (want.length === 0) throw new MsnUsageError(`unexpected argument '${positionals[0]}': ${PROGRAM} ${spec.name} takes options only (--name value).`);
    throw new MsnUsageError(`expected ${want.map((p) => `<${p.name}>`).join(' ')}, got ${positionals.length} argument(s).`);
  }
  return new ParsedArgs(spec, values, positionals);
}

/** The help of one command, from its spec: usage line, description, arguments, every option with its default. */
export function usage(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => `<${p.name}>`).join(' ');
  const lines = [`Usage: ${PROGRAM} ${spec.name}${pos ? ' ' + pos : ''} [options]`, '', spec.summary];
  if (spec.description) lines.push('', spec.description.trimEnd());
  const rows: [string, string][] = [];
  const opts: [string, OptionSpec][] = [...Object.entries(spec.options), ['help', HELP]];
  for (const [name, o] of opts) {
    const left = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    rows.push([left, o.help + (o.default !== undefined ? ` (default: ${o.default})` : '')]);
  }
  const posRows: [string, string][] = (spec.positionals ?? []).map((p) => [`<${p.name}>`, p.help]);
  const width = Math.min(28, Math.max(...[...rows, ...posRows].map(([l]) => l.length)) + 2);
  const fmt = ([l, r]: [string, string]) => `  ${l.length + 2 > width ? `${l}\n${' '.repeat(width + 2)}` : l.padEnd(width)}${r}`;
  if (posRows.length) lines.push('', 'Arguments:', ...posRows.map(fmt));
  lines.push('', 'Options:', ...rows.map(fmt));
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${PROGRAM} ${spec.name} ${e}`));
  return lines.join('\n') + '\n';
}
