// docs/cli.md must be exactly what the program's --help says: regenerated here and compared, and checked
// against the built CLI's real --help output for every command. `npm run docs:cli` rewrites it.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/cli.js";
import { commandPaths, renderCliDoc } from "../../src/cli/clidoc.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DOC = path.join(ROOT, "docs/cli.md");

describe("docs/cli.md", () => {
  it("is generated from the current program", () => {
    const generated = renderCliDoc(buildProgram());
    if (process.env.CTNET_UPDATE_DOCS) fs.writeFileSync(DOC, generated);
    expect(fs.readFileSync(DOC, "utf8"), "docs/cli.md is stale: run npm run docs:cli").toBe(generated);
  });

  it("holds the real --help output of every command of the built CLI", () => {
    const doc = fs.readFileSync(DOC, "utf8");
    const paths = commandPaths(buildProgram()).map((c) => c.path);
    expect(paths.length).toBeGreaterThan(15);
    for (const p of paths) {
      const r = spawnSync(path.join(ROOT, "bin/ctnet"), [...p, "--help"], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
      expect(r.status, `ctnet ${p.join(" ")} --help: ${r.stderr}`).toBe(0);
      expect(doc).toContain(`## ${["ctnet", ...p].join(" ")}\n\n\`\`\`text\n${r.stdout.trimEnd()}\n\`\`\``);
    }
    // one CLI start per command: on a loaded machine this takes longer than the default 5 s
  }, 120_000);
});
