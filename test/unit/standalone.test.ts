// The project stands alone: a clone has nothing beside it, so no code, test, script or CI file may
// reach for a sibling directory of the developers' machines (their reference outputs and bench drivers
// are in test/fixtures/ and bench/peers/).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// spelled in two parts, so this file does not name it either
const SIBLING = ["..", "shared"].join("/");

function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

it(`nothing in src, test, bench, scripts, examples or .ci names ${SIBLING}`, () => {
  const naming = ["src", "test", "bench", "scripts", "examples", ".ci"]
    .flatMap((d) => files(path.join(ROOT, d)))
    .filter((f) => fs.readFileSync(f, "utf8").includes(SIBLING))
    .map((f) => path.relative(ROOT, f));
  expect(naming).toEqual([]);
});
