/**
 * A tiny static server for the browser tests and the overhead benchmark:
 * dist/ under `${base}msn/`, the test pages under `${base}`, a sub-path base
 * (to prove nothing assumes the site root), correct MIME types (.wasm must be
 * application/wasm for streaming compilation), and optional COOP/COEP
 * (crossOriginIsolated: threaded wasm) and Content-Security-Policy headers.
 */
import { createServer, type Server } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.bin': 'application/octet-stream',
  '.png': 'image/png',
  '.css': 'text/css; charset=utf-8',
};

export interface ServerOptions {
  /** URL path prefix, starting and ending with '/'. Default '/deep/sub/path/'. */
  base?: string;
  /** Send COOP/COEP (and CORP) so pages are crossOriginIsolated. */
  isolate?: boolean;
  /** A Content-Security-Policy header for every response. */
  csp?: string;
  /** More folders to serve: URL path under `base` (ending in '/') -> folder. */
  extra?: Record<string, string>;
  /** Port on 127.0.0.1; default 0 (any free port). */
  port?: number;
}

export interface StaticServer {
  /** Origin + base, ending in '/'. */
  url: string;
  /** Every path requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions = {}): Promise<StaticServer> {
  const base = opts.base ?? '/deep/sub/path/';
  const mounts: [string, string][] = [
    ...Object.entries(opts.extra ?? {}).map(([sub, dir]): [string, string] => [base + sub, dir]),
    [`${base}msn/`, join(ROOT, 'dist')],
    [base, join(ROOT, 'test/browser/pages')],
  ];
  const requests: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
    if (opts.isolate) {
      headers['Cross-Origin-Opener-Policy'] = 'same-origin';
      headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
      headers['Cross-Origin-Resource-Policy'] = 'same-origin';
    }
    if (opts.csp) headers['Content-Security-Policy'] = opts.csp;
    const mount = mounts.find(([prefix]) => path.startsWith(prefix));
    if (!mount) {
      res.writeHead(404, headers).end('not found');
      return;
    }
    const file = normalize(join(mount[1], path.slice(mount[0].length) || 'index.html'));
    if (!file.startsWith(mount[1] + sep) && file !== mount[1]) {
      res.writeHead(403, headers).end('forbidden');
      return;
    }
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${base}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
