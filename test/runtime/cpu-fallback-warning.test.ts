/**
 * backend: 'auto' that ends on cpu because wasm (or webgpu) failed to start
 * still works, but ~20x slower: capabilities().backends says why, and the
 * client warns once (console.warn) naming each failed backend and its reason.
 * Here the wasm binaries are pointed at a folder that does not exist (what a
 * bundler that did not emit them amounts to); webgpu is absent in Node.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMsn } from '../../src/index.js';

describe("createMsn backend: 'auto' falling back to cpu", () => {
  afterEach(() => vi.restoreAllMocks());

  it('warns once, naming the backends that failed and why', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const msn = await createMsn({ worker: false, backend: 'auto', preset: 'micro-p4-28', wasmPath: '/nonexistent/msn-web-wasm/' });
    try {
      const caps = await msn.capabilities();
      expect(caps.backend).toBe('cpu');
      expect(caps.backends.wasm.status).toBe('rejected');
      expect(caps.backends.wasm.reason).toBeTruthy();
      const ours = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.startsWith('msn-web:'));
      expect(ours).toHaveLength(1);
      expect(ours[0]).toContain("fell back to the slow cpu backend");
      expect(ours[0]).toContain(`'wasm' failed to start (${caps.backends.wasm.reason})`);
      expect(ours[0]).toContain(`'webgpu' failed to start (${caps.backends.webgpu.reason})`);
      // Later calls do not warn again.
      await msn.capabilities();
      await msn.embed(new Uint8Array(28 * 28), { count: 1, width: 28, height: 28, channels: 1 });
      expect(warn.mock.calls.filter((c) => String(c[0]).startsWith('msn-web:'))).toHaveLength(1);
    } finally {
      await msn.dispose();
    }
  }, 120_000);

  it('does not warn when cpu was asked for', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const msn = await createMsn({ worker: false, backend: 'cpu', preset: 'micro-p4-28' });
    try {
      expect((await msn.capabilities()).backend).toBe('cpu');
      expect(warn.mock.calls.filter((c) => String(c[0]).startsWith('msn-web:'))).toHaveLength(0);
    } finally {
      await msn.dispose();
    }
  }, 120_000);
});
