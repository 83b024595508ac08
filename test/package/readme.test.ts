/**
 * Every code block of README.md runs, as a user would run it.
 *
 * Each fenced block is preceded by an HTML comment (invisible on GitHub) that
 * says how it runs:
 * - `<!-- readme: node -->`    an ES module for Node: written to a fresh app
 *   folder whose node_modules/msn-web is this repository (linked, with its
 *   dependencies, as npm lays out an install) and run with `node`;
 * - `<!-- readme: browser -->` a bundler app's module (`import ... from
 *   'msn-web'`): run in headless Chromium with an import map that sends
 *   'msn-web' to dist/client.js, which is what the bundler resolves it to
 *   (the bundlers themselves are tested by test/browser/vite.test.ts and
 *   webpack.test.ts, which build examples/vite-app and examples/webpack-app;
 *   every `import ... from 'msn-web'` line of the snippet must also be a line
 *   of both examples' main modules, so they cannot drift apart);
 * - `<!-- readme: page -->`    a whole HTML page: saved as index.html in the
 *   app folder, served as static files, opened in headless Chromium;
 * - `<!-- readme: sh -->`      shell commands, run with bash in the app
 *   folder with the package's `msn-web` command on PATH;
 * - `<!-- readme: not run (reason) -->` a block that is only shown (npm
 *   install from the registry, minutes-long jobs); the reason is required.
 * A block without such a comment fails the test, so a new snippet must be run
 * or marked.
 *
 * What a block prints is checked where it says so: a line
 * `console.log(x); // <expected>` must print <expected> (compared without
 * whitespace, with " read as '). Node and shell blocks must exit 0; browser
 * blocks must print every expected line with no page error and no failed
 * request. Browser blocks need Chromium (/usr/bin/chromium or CHROME_PATH):
 * without it they are skipped with a loud notice, or fail with
 * MSN_REQUIRE_BROWSER=1. Needs a built dist/ (npm test builds it first).
 * Also: every relative link of the README names a file that exists or one of
 * its own headings.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { ROOT } from './pack.js';
import { startServer, type StaticServer } from '../browser/server.js';

const CHROME = process.env.CHROME_PATH ?? '/usr/bin/chromium';
const HAVE_CHROME = existsSync(CHROME);
const REQUIRED = process.env.MSN_REQUIRE_BROWSER === '1';
const MODES = ['node', 'browser', 'page', 'sh'] as const;
/** The bundler apps that test/browser/vite.test.ts and webpack.test.ts build: their main modules import msn-web as the README does. */
const BUNDLER_EXAMPLES = ['examples/vite-app/main.js', 'examples/webpack-app/src/main.js'];
type Mode = (typeof MODES)[number];

export interface Snippet {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  /** How it runs (a bundler module can run in Node as well: 'browser, node'); empty when not run. */
  modes: Mode[];
  /** Why a 'not run' block is not run. */
  reason?: string;
}

/** The fenced blocks of a Markdown text with the `<!-- readme: ... -->` comment before each; throws on a block without one. */
export function readmeSnippets(md: string): Snippet[] {
  const lines = md.split('\n');
  const out: Snippet[] = [];
  const unmarked: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].trimStart().startsWith(fence); i++) body.push(lines[i].slice(open[1].length));
    let j = start - 1;
    while (j >= 0 && lines[j].trim() === '') j--;
    const marker = j >= 0 ? /^<!--\s*readme:\s*(.*?)\s*-->$/.exec(lines[j].trim()) : null;
    const where = `README.md:${start + 1} (\`\`\`${open[3]})`;
    if (!marker) {
      unmarked.push(where);
      continue;
    }
    const notRun = /^not run\s*\((.+)\)$/.exec(marker[1]);
    const modes = marker[1].split(/\s*,\s*/);
    if (notRun) {
      out.push({ line: start + 1, lang: open[3], code: body.join('\n'), modes: [], reason: notRun[1].trim() });
    } else if (modes.every((m) => (MODES as readonly string[]).includes(m))) {
      out.push({ line: start + 1, lang: open[3], code: body.join('\n'), modes: modes as Mode[] });
    } else {
      throw new Error(`${where}: unknown marker '<!-- readme: ${marker[1]} -->' (use ${MODES.join(', ')} or 'not run (reason)').`);
    }
  }
  if (unmarked.length) {
    throw new Error(
      `README code blocks without a <!-- readme: node | browser | page | sh | not run (reason) --> comment before them: ${unmarked.join(', ')}. ` +
        'Every README snippet is run by test/package/readme.test.ts, or marked as not run with the reason.',
    );
  }
  return out;
}

/** `console.log(...); // expected` lines: the expected outputs, normalised. */
export function expectedOutputs(code: string): string[] {
  return code
    .split('\n')
    .map((l) => /console\.log\(.*\);?\s*\/\/\s*(.+)$/.exec(l)?.[1])
    .filter((e): e is string => e !== undefined)
    .map(normalise);
}

const normalise = (s: string) => s.replace(/\s+/g, '').replace(/"/g, "'");

// MSN_README: another file of the same form (to check that this test catches a broken snippet).
const README = readFileSync(process.env.MSN_README ?? join(ROOT, 'README.md'), 'utf8');
const snippets = readmeSnippets(README);
const label = (s: Snippet, mode = s.modes.join(', ') || 'not run') => `README.md:${s.line} (${mode})`;
const withMode = (mode: Mode) => snippets.filter((s) => s.modes.includes(mode));
const BUILT = existsSync(join(ROOT, 'dist/index.js')) && existsSync(join(ROOT, 'dist/worker/msn.worker.js')) && existsSync(join(ROOT, 'dist/cli/main.js'));

let app: string;

/** A fresh app folder: node_modules/msn-web is this repository, with its dependencies beside it (npm's layout), `msn-web` in .bin. */
function makeApp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'msn-readme-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme-app', private: true, type: 'module' }));
  const link = (target: string, at: string) => {
    mkdirSync(dirname(at), { recursive: true });
    symlinkSync(target, at);
  };
  link(resolve(ROOT), join(dir, 'node_modules/msn-web'));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const dep of Object.keys(pkg.dependencies)) link(join(ROOT, 'node_modules', dep), join(dir, 'node_modules', dep));
  link(join(ROOT, 'dist/cli/main.js'), join(dir, 'node_modules/.bin/msn-web'));
  chmodSync(join(ROOT, 'dist/cli/main.js'), 0o755);
  return dir;
}

/** Images the snippets read from the app folder: my-images/ holds 16 28x28 PNGs (stripes). */
async function writeAppData(dir: string): Promise<void> {
  const { PNG } = await import('pngjs');
  mkdirSync(join(dir, 'my-images'));
  for (let k = 0; k < 16; k++) {
    const png = new PNG({ width: 28, height: 28 });
    for (let i = 0; i < 784; i++) {
      const v = ((k % 2 ? i : (i / 28) | 0) & 2) * 127;
      png.data.set([v, v, v, 255], i * 4);
    }
    writeFileSync(join(dir, `my-images/${k}.png`), PNG.sync.write(png));
  }
}

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd: app, env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

function expectPrinted(s: Snippet, out: string): void {
  const printed = normalise(out);
  for (const e of expectedOutputs(s.code)) expect(printed, `${label(s)} should print ${e}; it printed:\n${out}`).toContain(e);
}

beforeAll(async () => {
  if (!BUILT) throw new Error('dist/ is not built: run `npm run build` (npm test builds it first).');
  app = makeApp();
  await writeAppData(app);
});

afterAll(() => {
  if (app && !process.env.MSN_KEEP_TMP) rmSync(app, { recursive: true, force: true });
});

describe('README.md', () => {
  it('marks every code block as run (node, browser, page, sh) or not run with a reason', () => {
    expect(snippets.length).toBeGreaterThan(0);
    for (const s of snippets) if (s.modes.length === 0) expect(s.reason, label(s)).toMatch(/\w{3}/);
    expect(snippets.filter((s) => s.modes.length > 0).length).toBeGreaterThanOrEqual(4);
    // A contributor's commands stay in the README (CI runs `npm test`).
    expect(snippets.some((s) => /^npm test\b/m.test(s.code))).toBe(true);
    expect(snippets.some((s) => /^npm start\b/m.test(s.code))).toBe(true);
  });

  it('rejects a block without a marker and an unknown marker', () => {
    expect(() => readmeSnippets('text\n\n```js\nx\n```\n')).toThrow(/README.md:3/);
    expect(() => readmeSnippets('<!-- readme: maybe -->\n```js\nx\n```\n')).toThrow(/unknown marker/);
    expect(() => readmeSnippets('<!-- readme: not run () -->\n```sh\nx\n```\n')).toThrow(/unknown marker/);
    expect(() => readmeSnippets('<!-- readme: node, bundler -->\n```js\nx\n```\n')).toThrow(/unknown marker/);
    expect(readmeSnippets('<!-- readme: node -->\n\n```js\nconsole.log(1); // 1\n```\n')).toMatchObject([{ line: 3, modes: ['node'] }]);
    expect(readmeSnippets('<!-- readme: browser, node -->\n```js\nx\n```\n')).toMatchObject([{ modes: ['browser', 'node'] }]);
    expect(readmeSnippets('<!-- readme: not run (a listing) -->\n```\nx\n```\n')).toMatchObject([{ modes: [], reason: 'a listing' }]);
    expect(expectedOutputs("console.log(labels); // [ 'v', \"h\" ]")).toEqual(["['v','h']"]);
  });

  it('links only to files that exist and to headings it has', () => {
    // GitHub's heading anchors: lower case, punctuation dropped, spaces as '-'.
    const slug = (h: string) => h.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
    const anchors = new Set(README.split('\n').filter((l) => /^#{1,6} /.test(l)).map((l) => slug(l.replace(/^#+/, ''))));
    const broken: string[] = [];
    for (const [, target] of README.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      if (target.startsWith('#')) {
        if (!anchors.has(target.slice(1))) broken.push(target);
      } else if (!existsSync(join(ROOT, target.split('#')[0]))) broken.push(target);
    }
    expect(broken).toEqual([]);
  });

  for (const s of withMode('node')) {
    it(`${label(s, 'node')}: runs in Node`, async () => {
      const file = join(app, `snippet-${s.line}.mjs`);
      writeFileSync(file, s.code);
      const { code, out } = await exec(process.execPath, [file]);
      expect(code, `${label(s)} exited ${code}:\n${out}`).toBe(0);
      expectPrinted(s, out);
    }, 90_000);
  }

  for (const s of withMode('sh')) {
    it(`${label(s, 'sh')}: runs in bash`, async () => {
      const { code, out } = await exec('bash', ['-euo', 'pipefail', '-c', s.code], { PATH: `${join(app, 'node_modules/.bin')}:${process.env.PATH}` });
      expect(code, `${label(s)} exited ${code}:\n${out}`).toBe(0);
      expect(out.trim().length).toBeGreaterThan(0);
    }, 90_000);
  }

  const inBrowser = [...withMode('browser').map((s) => [s, 'browser'] as const), ...withMode('page').map((s) => [s, 'page'] as const)];
  if (!HAVE_CHROME) {
    const line = '!'.repeat(78);
    console.warn(`\n${line}\n!! README BROWSER SNIPPETS SKIPPED: no Chromium at ${CHROME}. MSN_REQUIRE_BROWSER=1 makes this a failure.\n${line}\n`);
    (REQUIRED ? it : it.skip)(`${REQUIRED ? 'FAILS' : 'SKIPPED'}: the browser snippets need Chromium at ${CHROME}`, () => {
      throw new Error(`MSN_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROME}.`);
    });
  }

  describe.runIf(HAVE_CHROME && inBrowser.length > 0)('in headless Chromium', () => {
    let browser: Browser;
    let server: StaticServer;

    beforeAll(async () => {
      const { chromium } = await import('playwright-core');
      [browser, server] = await Promise.all([chromium.launch({ executablePath: CHROME, args: ['--disable-quic'] }), startServer({ base: '/', extra: { '': app } })]);
    });
    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    for (const [s, mode] of inBrowser) {
      it(`${label(s, mode)}: runs in headless Chromium`, async () => {
        const expected = expectedOutputs(s.code);
        expect(expected.length, `${label(s)}: a browser snippet needs a \`console.log(x); // expected\` line (that is how the test knows it finished)`).toBeGreaterThan(0);
        if (mode === 'browser') {
          // The bundler's module, verbatim; the import map resolves 'msn-web' as the bundler would (to the client).
          for (const file of BUNDLER_EXAMPLES) {
            const example = readFileSync(join(ROOT, file), 'utf8').split('\n').map((l) => l.trim());
            for (const imp of s.code.split('\n').filter((l) => /from 'msn-web/.test(l))) expect(example, `${label(s)}: ${file} should have the line ${imp}`).toContain(imp.trim());
            // ... and names the model the same way (the bundler must emit the named model's files).
            const model = /createMsn\(\{ model: '[^']+'/.exec(s.code)?.[0];
            if (model) expect(example.join('\n'), `${label(s)}: ${file} should call ${model}`).toContain(model);
          }
          writeFileSync(join(app, `snippet-${s.line}.js`), s.code);
          writeFileSync(
            join(app, `snippet-${s.line}.html`),
            '<!doctype html><meta charset="utf-8">\n<script type="importmap">{ "imports": { "msn-web": "./node_modules/msn-web/dist/client.js" } }</script>\n' +
              `<script type="module" src="./snippet-${s.line}.js"></script>\n`,
          );
        } else {
          writeFileSync(join(app, `snippet-${s.line}.html`), s.code);
        }
        const page = await browser.newPage();
        const printed: string[] = [];
        const problems: string[] = [];
        page.on('console', (m) => {
          // A failed request is reported with its URL below (and a missing favicon is no problem).
          if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
          else printed.push(m.text());
        });
        // Arrays and objects as their JSON (Chromium's text for them is 'Array(2)').
        await page.addInitScript(() => {
          const log = console.log.bind(console);
          console.log = (...a: unknown[]) => log(...a.map((x) => (typeof x === 'object' && x !== null ? JSON.stringify(x) : x)));
        });
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        // Chromium may report a worker fetch as aborted after its whole 200 response (seen when crossOriginIsolated);
        // a missing file shows as its HTTP status below, and a snippet that then breaks as a page error.
        page.on('requestfailed', (r) => {
          if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed (${r.failure()?.errorText}): ${r.url()}`);
        });
        page.on('response', (r) => {
          if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) problems.push(`HTTP ${r.status()}: ${r.url()}`);
        });
        try {
          await page.goto(`${server.url}snippet-${s.line}.html`);
          const deadline = Date.now() + 30_000; // a good run takes ~5 s
          const done = () => expected.every((e) => normalise(printed.join('\n')).includes(e));
          while (!done() && problems.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
          expect(problems, `${label(s)}; printed:\n${printed.join('\n')}`).toEqual([]);
          expectPrinted(s, printed.join('\n'));
        } finally {
          await page.close();
        }
      }, 90_000);
    }
  });
});
