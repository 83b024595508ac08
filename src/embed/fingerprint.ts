/**
 * A short identity of an encoder's weights, stored in head bundles so a head
 * is never silently used with features of another encoder: SHA-256 over the
 * config and every parameter's name, shape and float32 bytes, in name order.
 */
import { VitConfig } from '../model/config.js';
import { NamedArrays } from '../model/params.js';

export async function encoderFingerprint(config: VitConfig, params: NamedArrays): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(JSON.stringify(config))];
  for (const name of Object.keys(params).sort()) {
    const a = params[name];
    parts.push(enc.encode(`${name}:${a.shape.join('x')}`));
    parts.push(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return 'sha256:' + Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}
