#!/usr/bin/env node
/** The msn-web command line: pretrain, export, eval, convert. */
import { pretrainCommand } from './pretrain.js';

const [cmd, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = {
  pretrain: pretrainCommand,
  eval: async (argv) => (await import('./eval.js')).evalCommand(argv),
  convert: async (argv) => (await import('./convert.js')).convertCommand(argv),
  export: async (argv) => (await import('./export.js')).exportCommand(argv),
};
const run = commands[cmd ?? ''];
if (!run) {
  console.error(`usage: msn-web <${Object.keys(commands).join('|')}> [options]`);
  process.exit(2);
}
run(rest).catch((e: Error) => {
  console.error(`msn-web ${cmd}: ${e.name}: ${e.message}`);
  process.exit(1);
});
