// A plain page with no bundler: import the client from dist/, create it
// (the engine runs in a module worker), embed one canvas image, report.
import { createMsn } from './msn/client.js';

const violations = [];
document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
const params = new URLSearchParams(location.search);
let result;
try {
  const ctx = document.getElementById('c').getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, 28, 28);
  ctx.fillStyle = '#fff';
  ctx.fillRect(6, 12, 16, 4); // a horizontal bar
  const image = ctx.getImageData(0, 0, 28, 28);
  const msn = await createMsn({ preset: 'micro-p4-28', backend: params.get('backend') ?? 'auto' });
  const features = await msn.embed(image.data, { count: 1, width: 28, height: 28, channels: 4 });
  const caps = await msn.capabilities();
  result = {
    ok: true, backend: caps.backend, host: caps.host, backends: caps.backends, wasm: caps.wasm ?? null, wasmKernels: caps.wasmKernels ?? null,
    crossOriginIsolated: caps.crossOriginIsolated, dim: features.length, finite: features.every(Number.isFinite),
    transferred: image.data.length === 0,
  };
  await msn.dispose();
} catch (e) {
  result = { ok: false, name: e.name, message: e.message };
}
result.violations = violations;
document.body.dataset.result = JSON.stringify(result);
