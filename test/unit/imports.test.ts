// No import cycle in src/: a module may depend on another only if that one does not depend back on it,
// through any chain. Static imports, re-exports, dynamic import() and `import type` all count: a type
// import is erased at run time, but a cycle through it still means the two modules cannot be read,
// tested or replaced (a firewall or network driver) one without the other.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(__dirname, "../../src");

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** The src/ modules a file imports, by any of the four forms (relative specifiers only: packages are not src/). */
export function importsOf(file: string, text: string): string[] {
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']/gm),
    ...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm),
    ...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1]);
  return specs.filter((s) => s.startsWith(".")).map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, ".ts")));
}

/** Every cycle's smallest form found by a depth-first walk: a list of files, the first repeated at the end. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, "open");
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === "open") cycles.push([...stack.slice(stack.indexOf(g)), g]);
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}

describe("src/ imports", () => {
  it("finds the cycles it is meant to find", () => {
    const text = `import { a } from "./a.js";\nimport type { B } from "./b.js";\nexport { c } from "./c.js";\nconst d = await import("./d.js");\nimport chalk from "chalk";`;
    expect(importsOf("/x/m.ts", text)).toEqual(["/x/a.ts", "/x/b.ts", "/x/c.ts", "/x/d.ts"]);
    const graph = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
    expect(findCycles(graph)).toEqual([["a", "b", "c", "a"]]);
  });

  it("have no cycle, static, dynamic or type-only, but the ones listed", () => {
    const files = sources(SRC);
    const graph = new Map(files.map((f) => [f, importsOf(f, fs.readFileSync(f, "utf8"))]));
    for (const [f, deps] of graph) for (const d of deps) expect(fs.existsSync(d), `${path.relative(SRC, f)} imports missing ${path.relative(SRC, d)}`).toBe(true);
    const cycles = findCycles(graph).map((c) => c.map((f) => path.relative(SRC, f)).join(" -> "));
    expect(cycles).toEqual([]);
  });
});
