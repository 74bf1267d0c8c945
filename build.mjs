// Bundles src/ into dist/: one small entry plus lazily loaded chunks, so each command loads only what it uses.
import fs from "node:fs";
import { build } from "esbuild";

// chunk names carry content hashes: stale ones from earlier builds would pile up
fs.rmSync("dist", { recursive: true, force: true });

await build({
  entryPoints: ["src/cli/cli.ts"],
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: false,
  legalComments: "none",
  logLevel: "warning",
  // commander is CommonJS: give the ESM bundle a require() for their built-in imports
  banner: { js: 'import { createRequire as __ctnetRequire } from "node:module"; const require = __ctnetRequire(import.meta.url);' },
});
