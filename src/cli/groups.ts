/**
 * msn-web groups --data <IDX folder | image folder> [--model DIR] [--limit N]
 *   [--split test|train] [--sheets DIR] [--typical 16] [--backend wasm|cpu] [--json]
 * Sorts unlabelled images by MSN's own prediction, without any label: each
 * image joins the group of its most likely prototype (client.groupImages, the
 * same path as msn.assignPrototypes). Prints one line per group (prototype,
 * count, share, mean top probability) and the prototype usage (prototypes in
 * use, entropy and perplexity of the mean assignment: the collapse
 * diagnostic). IDX folders carry labels: then each group's majority label and
 * purity are shown too, as a check; they play no part in the grouping. With
 * --sheets, one contact sheet PNG per group of its most typical images.
 * The options are declared in GROUPS (see args.ts; `--help` prints them).
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { MsnConfigError } from '../errors.js';
import { readIdxFolder } from '../data/idx-node.js';
import { loadImageFolder } from '../data/folder-node.js';
import { sharedPixelData } from '../pretrain/source.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { createMsn } from '../runtime/client.js';
import type { Grouping } from '../embed/groups.js';
import { MsnUsageError, parseCommand, usage } from './args.js';
import { BACKENDS, GROUPS, SPLITS } from './commands.js';
import { type SheetImages, contactSheet } from './contact-sheet.js';
import { DEFAULT_MODEL_DIR, modelDirOf } from './paths.js';

interface GroupData extends SheetImages {
  count: number;
  /** Digit labels of an IDX folder (shown, never used for grouping). */
  labels?: Uint8Array;
  what: string;
}

/** The images to group: an IDX folder's split (gray, with labels) or a folder's PNG/JPEG files (RGB). */
async function loadGroupData(dir: string, split: 'test' | 'train', limit: number | undefined): Promise<GroupData> {
  let isIdx: boolean;
  try {
    isIdx = statSync(dir).isDirectory() && readdirSync(dir).some((f) => /idx3[-.]ubyte(\.gz)?$/i.test(f));
  } catch {
    throw new MsnConfigError(`Data folder '${dir}' does not exist; pass --data <IDX folder or folder of PNG/JPEG images>.`);
  }
  if (isIdx) {
    const s = readIdxFolder(dir)[split];
    const count = Math.min(s.count, limit ?? s.count);
    return {
      pixels: s.images.subarray(0, count * s.height * s.width), labels: s.labels.subarray(0, count),
      count, width: s.width, height: s.height, channels: 1, what: `IDX ${split} split of ${dir}`,
    };
  }
  const ds = await loadImageFolder(dir);
  const all = sharedPixelData(ds)!.pixels as Uint8Array; // decoded files are bytes, held in memory
  const count = Math.min(ds.count, limit ?? ds.count);
  return {
    pixels: all.slice(0, count * ds.height * ds.width * ds.channels), count, width: ds.width, height: ds.height,
    channels: ds.channels as 1 | 3, what: `PNG/JPEG files of ${dir}`,
  };
}

export async function groupsCommand(argv: string[]): Promise<void> {
  const args = parseCommand(GROUPS, argv);
  if (args === 'help') {
    process.stdout.write(usage(GROUPS));
    return;
  }
  const dataDir = args.string('data');
  if (!dataDir) throw new MsnUsageError('Pass --data <folder>: an MNIST-layout IDX folder or a folder of PNG/JPEG images.');
  const modelDir = modelDirOf(args.string('model') ?? DEFAULT_MODEL_DIR);
  const limit = args.positive('limit');
  const split = args.choice('split', SPLITS)!;
  const sheets = args.string('sheets');
  const typical = args.positive('typical')!;
  const backend = args.choice('backend', BACKENDS)!;
  const json = args.flag('json');

  const data = await loadGroupData(dataDir, split, limit);
  tf.env().set('PROD', true); // no "install tfjs-node" banner
  const msn = await createMsn({ worker: false, model: modelDir, backend });
  let g: Grouping;
  try {
    if (!json) console.error(`assigning ${data.count} images to the prototypes of ${modelDir} ...`);
    const shape = { count: data.count, width: data.width, height: data.height, channels: data.channels };
    g = await msn.groupImages(data.pixels, shape, { typical, transfer: false });
  } finally {
    await msn.dispose();
  }
  const purity = data.labels && groupPurity(g, data.labels);
  if (sheets) {
    mkdirSync(sheets, { recursive: true });
    for (const [n, grp] of g.groups.entries()) {
      await writeFileAtomic(join(sheets, sheetName(n, grp.prototype)), contactSheet(data, grp.typical));
    }
  }
  if (json) {
    console.log(JSON.stringify({
      model: modelDir, data: dataDir, images: data.count, usage: g.usage,
      groups: g.groups.map((grp, n) => ({
        prototype: grp.prototype, count: grp.count, meanProb: grp.meanProb, typical: grp.typical,
        ...(purity ? { majority: purity.groups[n].label, purity: purity.groups[n].purity } : {}),
        ...(sheets ? { sheet: sheetName(n, grp.prototype) } : {}),
      })),
      ...(purity ? { purity: purity.overall } : {}),
    }));
    return;
  }
  console.log(formatGroups(g, data, purity));
  if (sheets) console.log(`wrote ${g.groups.length} contact sheets (the ${typical} most typical images of each group) to ${sheets}`);
}

/** group-001-prototype-17.png: the largest group first. */
export function sheetName(index: number, prototype: number): string {
  return `group-${String(index + 1).padStart(3, '0')}-prototype-${prototype}.png`;
}

interface Purity {
  groups: { label: number; purity: number }[];
  overall: number;
}

/** Each group's majority label and its share; overall, the share of images in their group's majority. */
function groupPurity(g: Grouping, labels: Uint8Array): Purity {
  let majority = 0;
  const groups = g.groups.map((grp) => {
    const counts = new Map<number, number>();
    for (const i of grp.members) counts.set(labels[i], (counts.get(labels[i]) ?? 0) + 1);
    const [label, n] = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0];
    majority += n;
    return { label, purity: n / grp.count };
  });
  const total = g.groups.reduce((s, grp) => s + grp.count, 0);
  return { groups, overall: majority / total };
}

function formatGroups(g: Grouping, data: GroupData, purity: Purity | undefined): string {
  const u = g.usage;
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const cols = ['group', 'prototype', 'count', 'share', 'mean top p', ...(purity ? ['label', 'purity'] : [])];
  const lines = [
    `${g.groups.length} groups of ${data.count} images (${data.what}), by most likely prototype`,
    `prototypes in use: ${u.inUse} of ${u.numPrototypes}; mean assignment entropy ${u.entropy.toFixed(2)} of ${u.maxEntropy.toFixed(2)} nats ` +
      `(perplexity ${u.perplexity.toFixed(1)}: the prototypes effectively used; near 1 means collapse)`,
    '',
    cols.map((c) => c.padStart(c === 'group' ? 5 : 11)).join(''),
  ];
  g.groups.forEach((grp, n) => {
    const cells = [String(n + 1).padStart(5), String(grp.prototype), String(grp.count), pct(grp.count / data.count), grp.meanProb.toFixed(3)];
    if (purity) cells.push(String(purity.groups[n].label), pct(purity.groups[n].purity));
    lines.push(cells[0] + cells.slice(1).map((c) => c.padStart(11)).join(''));
  });
  if (purity) lines.push('', `purity with respect to the labels of the IDX folder (not used for grouping): ${pct(purity.overall)}`);
  return lines.join('\n');
}
