#!/usr/bin/env node
/**
 * The msn-web command line: pretrain, export, eval, groups, convert.
 *
 * Exit codes: 0 on success and for --help/--version; 2 for a usage error (no
 * or unknown command, unknown option, missing or malformed value: the
 * message and a hint to --help); 1 for any other failure, printed as
 * `msn-web <cmd>: <ErrorName>: <message>`.
 */
import { PROGRAM, isUsageError, usage, wantsHelp } from './args.js';
import { COMMAND_SPECS } from './commands.js';

type Run = (argv: string[]) => Promise<void>;

// Loaded on demand: help, --version and usage errors of the command word start no TensorFlow.js.
const RUN: Record<string, () => Promise<Run>> = {
  pretrain: async () => (await import('./pretrain.js')).pretrainCommand,
  export: async () => (await import('./export.js')).exportCommand,
  'export-onnx': async () => (await import('./export-onnx.js')).exportOnnxCommand,
  'export-torch': async () => (await import('./export-torch.js')).exportTorchCommand,
  'export-hf': async () => (await import('./export-hf.js')).exportHfCommand,
  eval: async () => (await import('./eval.js')).evalCommand,
  groups: async () => (await import('./groups.js')).groupsCommand,
  convert: async () => (await import('./convert.js')).convertCommand,
};

function mainUsage(): string {
  const names = Object.keys(COMMAND_SPECS);
  const width = Math.max(...names.map((c) => c.length)) + 2;
  return [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Masked Siamese Networks on TensorFlow.js: pretrain, export, evaluate, group images, convert.',
    '',
    'Commands:',
    ...names.map((name) => `  ${name.padEnd(width)}${COMMAND_SPECS[name].brief ?? COMMAND_SPECS[name].summary}`),
    '',
    'Options:',
    `  -h, --help     show this help ('${PROGRAM} <command> --help': the options of a command)`,
    '  -v, --version  print the version',
    '',
    `Run '${PROGRAM} <command> --help' for the options of a command.`,
  ].join('\n') + '\n';
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    process.stderr.write(mainUsage());
    return 2;
  }
  if (cmd === '-h' || cmd === '--help' || cmd === 'help') {
    // `help <command>` is `<command> --help`
    if (rest[0] !== undefined && Object.hasOwn(COMMAND_SPECS, rest[0])) return main([rest[0], '--help']);
    process.stdout.write(mainUsage());
    return 0;
  }
  if (cmd === '-v' || cmd === '--version' || cmd === 'version') {
    const { packageVersion } = await import('./paths.js');
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (!Object.hasOwn(COMMAND_SPECS, cmd)) {
    process.stderr.write(`${PROGRAM}: unknown ${cmd.startsWith('-') ? 'option' : 'command'} '${cmd}'.\n\n${mainUsage()}`);
    return 2;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(usage(COMMAND_SPECS[cmd]));
    return 0;
  }
  try {
    await (await RUN[cmd]())(rest);
    return 0;
  } catch (e) {
    if (isUsageError(e)) {
      process.stderr.write(`${PROGRAM} ${cmd}: ${e.message}\nRun '${PROGRAM} ${cmd} --help' for its options.\n`);
      return 2;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`${PROGRAM} ${cmd}: ${err.name}: ${err.message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Failures exit at once (a backend may hold the event loop open); success ends on its own.
    if (code !== 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`${PROGRAM}: ${String(e)}\n`);
    process.exit(1);
  },
);
