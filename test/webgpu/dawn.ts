/**
 * WebGPU in Node for the tests: the `webgpu` npm package (Dawn) on
 * SwiftShader's Vulkan driver from Debian's chromium package (needs the
 * Vulkan loader, libvulkan1). There is no OffscreenCanvas in Node, so any
 * synchronous GPU read (dataSync) throws here instead of returning zeros as
 * in Chromium: tests on this backend also prove the code reads asynchronously.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/runtime/backend.js';
import { selectBackend } from '../../src/runtime/select-backend.js';

export const ICD = process.env.VK_ICD_FILENAMES ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Installs navigator.gpu; resolves with why WebGPU is unavailable, or undefined when it works. */
export async function installNodeWebGpu(): Promise<string | undefined> {
  if (!existsSync(ICD)) return `no Vulkan driver description at ${ICD} (apt-get install -y chromium, or set VK_ICD_FILENAMES)`;
  process.env.VK_ICD_FILENAMES = ICD;
  try {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const gpu = create([]);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    const adapter = await gpu.requestAdapter();
    return adapter ? undefined : 'requestAdapter() returned null (apt-get install -y libvulkan1 for the Vulkan loader)';
  } catch (e) {
    return `the webgpu package failed to load: ${(e as Error).message}`;
  }
}

/**
 * `describe` on the WebGPU backend (selected once, each test sets it active
 * with useWebGpu()). Without a usable adapter: a loud SKIPPED notice, or a
 * failing test when MSN_REQUIRE_WEBGPU=1 (set by .ci/run).
 */
export async function describeOnWebGpu(title: string, body: () => void): Promise<void> {
  const unavailable = await installNodeWebGpu();
  if (unavailable) {
    const required = process.env.MSN_REQUIRE_WEBGPU === '1';
    const line = '!'.repeat(78);
    console.warn(`\n${line}\n!! NODE WEBGPU TESTS SKIPPED: ${unavailable}.\n!! MSN_REQUIRE_WEBGPU=1 makes this a failure.\n${line}\n`);
    describe(title, () => {
      (required ? it : it.skip)(`${required ? 'FAILS' : 'SKIPPED'}: ${unavailable}`, () => {
        throw new Error(`MSN_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${unavailable}.`);
      });
    });
    return;
  }
  describe(title, () => {
    beforeAll(async () => {
      await selectBackend('webgpu'); // imports and registers tfjs-backend-webgpu, runs the probe
    });
    afterAll(async () => {
      await useBackend('cpu');
    });
    body();
  });
}

/** Makes the (already selected) WebGPU backend the active one. */
export async function useWebGpu(): Promise<void> {
  await tf.setBackend('webgpu');
}
