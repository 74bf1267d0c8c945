// Bundles src/ into dist/: one small entry plus lazily loaded chunks, so each command loads only what it uses.
import { build } from "esbuild";

await build({
  entryPoints: ["src/cli.ts"],
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: false,
  legalComments: "none",
  logLevel: "warning",
  // commander and cli-table3 are CommonJS: give the ESM bundle a require() for their built-in imports
  banner: { js: 'import { createRequire as __ctnetRequire } from "node:module"; const require = __ctnetRequire(import.meta.url);' },
});
