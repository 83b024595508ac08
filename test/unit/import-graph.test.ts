/**
 * No import cycles in src/. Every relative import of every file is read with
 * the TypeScript parser: static `import` and `export ... from`, dynamic
 * `import()`, and type-only imports (`import type`, `import { type X }`,
 * `import('./x.js').T` in a type).
 *
 * Two graphs are checked:
 * - what runs (type-only imports left out, since the compiler erases them):
 *   no cycle at all. A cycle here decides module initialisation order, and a
 *   class read before its module has run is a TDZ error in one bundle and not
 *   another.
 * - what a reader follows (type-only imports included): no cycle in heads/ (the
 *   bundle format and the head classes used to import each other), and no
 *   cycle anywhere beyond the known one below, so a new cycle fails here.
 *   Types count because two modules that each need the other to be understood
 *   are one module in two files, whether or not the emitted code shows it.
 */
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');
const SRC = join(ROOT, 'src');

/**
 * Cycles through type-only imports that exist today, each as its sorted files.
 * runtime/client.ts starts the Node transport; node-transport.ts names the
 * client's Transport and NodeWorkerOptions types (engine slice of issue 15).
 */
const KNOWN_TYPE_CYCLES = [['src/runtime/client.ts', 'src/runtime/node-transport.ts']];

interface Edge {
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|tsx)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The file a relative specifier names: './x.js' is './x.ts' in the sources. */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  const base = resolve(dirname(from), specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/** The relative import specifiers of one file's text, each marked type-only or not. */
function specifiersOf(text: string): { specifier: string; typeOnly: boolean }[] {
  const source = ts.createSourceFile('file.ts', text, ts.ScriptTarget.Latest, true);
  const found: { specifier: string; typeOnly: boolean }[] = [];
  const add = (specifier: ts.Node | undefined, typeOnly: boolean) => {
    if (specifier && ts.isStringLiteralLike(specifier) && specifier.text.startsWith('.')) found.push({ specifier: specifier.text, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      // `import { type A, type B }` is erased like `import type { A, B }`; a bare `import './x.js'` runs.
      const allTypes = !!clause && !clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, !!clause?.isTypeOnly || allTypes);
    } else if (ts.isExportDeclaration(node)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node.moduleSpecifier, node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The files one file imports; a specifier that names no source file (a .json, a .wasm) is no edge. */
function importsOf(file: string): Edge[] {
  return specifiersOf(readFileSync(file, 'utf8')).flatMap(({ specifier, typeOnly }) => {
    const to = resolveSpecifier(file, specifier);
    return to ? [{ to, typeOnly }] : [];
  });
}

/** Strongly connected components with more than one file (or a file importing itself): the cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return found.sort((a, b) => a[0].localeCompare(b[0]));
}

const files = sourceFiles(SRC);
const edges = new Map(files.map((f) => [relative(ROOT, f), importsOf(f).map((e) => ({ ...e, to: relative(ROOT, e.to) }))]));
const graphOf = (withTypes: boolean) =>
  new Map([...edges].map(([file, list]) => [file, [...new Set(list.filter((e) => withTypes || !e.typeOnly).map((e) => e.to))]]));

describe('the import graph of src/', () => {
  it('reads every kind of relative import (the parser is not fooled by comments or strings)', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "import { type C, type D } from './c.js';",
      "import { type E, f } from './e.js';",
      "export { g } from './g.js';",
      "export type { H } from './h.js';",
      "export * from './i.js';",
      "import './side-effect.js';",
      "const j = () => import('./j.js');",
      "let k: import('./k.js').K;",
      "// import { nope } from './comment.js';",
      "const s = \"import { nope } from './string.js'\";",
      "import { ext } from 'typescript';",
    ].join('\n');
    expect(specifiersOf(text)).toEqual([
      { specifier: './a.js', typeOnly: false },
      { specifier: './b.js', typeOnly: true },
      { specifier: './c.js', typeOnly: true },
      { specifier: './e.js', typeOnly: false },
      { specifier: './g.js', typeOnly: false },
      { specifier: './h.js', typeOnly: true },
      { specifier: './i.js', typeOnly: false },
      { specifier: './side-effect.js', typeOnly: false },
      { specifier: './j.js', typeOnly: false },
      { specifier: './k.js', typeOnly: true },
    ]);
    // And on the real sources, through the resolver.
    const heads = edges.get('src/heads/bundle.ts')!;
    expect(heads).toContainEqual({ to: 'src/heads/registry.ts', typeOnly: false });
    expect(heads).toContainEqual({ to: 'src/heads/head.ts', typeOnly: true });
    const classifier = edges.get('src/heads/classifier.ts')!;
    expect(classifier).toContainEqual({ to: 'src/heads/linear.ts', typeOnly: true });
    expect(classifier).toContainEqual({ to: 'src/heads/registry.ts', typeOnly: false });
  });

  it('finds cycles, and only cycles', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c'], ['e']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('has no cycle through imports that run (type-only imports erased)', () => {
    expect(cycles(graphOf(false))).toEqual([]);
  });

  it('has no cycle in heads/, counting type-only imports', () => {
    expect(cycles(graphOf(true)).filter((c) => c.some((f) => f.startsWith('src/heads/')))).toEqual([]);
  });

  it('has no cycle beyond the known ones, counting type-only imports', () => {
    expect(cycles(graphOf(true))).toEqual(KNOWN_TYPE_CYCLES);
  });
});
