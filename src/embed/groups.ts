/**
 * Unsupervised grouping on top of prototype assignments: images grouped by
 * their most likely prototype, the most typical images of each group, and the
 * prototype usage as a collapse diagnostic. Plain arrays only (no tfjs), so it
 * runs on the main thread next to the client.
 */
import { MsnValueError } from '../errors.js';
import type { PrototypeAssignment } from './assign.js';

export interface PrototypeGroup {
  prototype: number;
  /** Images whose most likely prototype this is. */
  count: number;
  /** Their mean top probability. */
  meanProb: number;
  /** Up to `typical` image indices, highest probability first. */
  typical: number[];
  /** Every member, in image order. */
  members: number[];
}

export interface PrototypeUsage {
  /** Prototypes that are some image's most likely one. */
  inUse: number;
  numPrototypes: number;
  /** Entropy (nats) of the mean assignment; ln K when every prototype is used equally, 0 at collapse. */
  entropy: number;
  maxEntropy: number;
  /** exp(entropy): the effective number of prototypes in use. */
  perplexity: number;
}

export interface Grouping {
  /** Largest group first. */
  groups: PrototypeGroup[];
  usage: PrototypeUsage;
}

export function groupByPrototype(a: PrototypeAssignment, opts: { typical?: number } = {}): Grouping {
  const typical = opts.typical ?? 5;
  if (!Number.isInteger(typical) || typical < 0) throw new MsnValueError(`typical must be an integer >= 0, got ${String(opts.typical)}.`);
  const byProto = new Map<number, number[]>();
  for (let i = 0; i < a.count; i++) {
    const p = a.ids[i * a.topK];
    if (!byProto.has(p)) byProto.set(p, []);
    byProto.get(p)!.push(i);
  }
  const top = (i: number) => a.probs[i * a.topK];
  const groups = [...byProto].map(([prototype, members]) => ({
    prototype,
    count: members.length,
    meanProb: members.reduce((s, i) => s + top(i), 0) / members.length,
    typical: [...members].sort((x, y) => top(y) - top(x) || x - y).slice(0, typical),
    members,
  }));
  groups.sort((x, y) => y.count - x.count || x.prototype - y.prototype);
  let entropy = 0;
  for (const p of a.meanProbs) if (p > 0) entropy -= p * Math.log(p);
  return {
    groups,
    usage: { inUse: byProto.size, numPrototypes: a.numPrototypes, entropy, maxEntropy: Math.log(a.numPrototypes), perplexity: Math.exp(entropy) },
  };
}
