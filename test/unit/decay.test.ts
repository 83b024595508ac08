/**
 * train/decay.ts: the official weight-decay rule, as the optimizer exports it
 * and as the checkpoint importer uses it (the same function: the importer
 * must not load AdamW to get it).
 */
import { expect, it } from 'vitest';
import { isDecayed } from '../../src/train/optimizer.js';
import { isDecayed as ruleOnItsOwn } from '../../src/train/decay.js';

it('isDecayed: rank > 1 and neither bias nor bn in the name', () => {
  expect(isDecayed('blocks.0.attn.qkv.weight', [8, 24])).toBe(true);
  expect(isDecayed('cls_token', [1, 1, 8])).toBe(true);
  expect(isDecayed('norm.weight', [8])).toBe(false);
  expect(isDecayed('odd.bias', [2, 2])).toBe(false);
  expect(isDecayed('fc.bn1.odd', [2, 2])).toBe(false);
});

it('is one rule: the optimizer re-exports the module the importer reads', () => {
  expect(isDecayed).toBe(ruleOnItsOwn);
});
