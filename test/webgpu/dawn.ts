/**
 * WebGPU in Node for the tests: the `webgpu` npm package (Dawn) on
 * SwiftShader's Vulkan driver from Debian's chromium package (needs the
 * Vulkan loader, libvulkan1). There is no OffscreenCanvas in Node, so any
 * synchronous GPU read (dataSync) throws here instead of returning zeros as
 * in Chromium: tests on this backend also prove the code reads asynchronously.
 */
import { existsSync } from 'node:fs';

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
