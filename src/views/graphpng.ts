// `graph --format png`: the SVG rasterised by resvg (@resvg/resvg-js, prebuilt for each platform on npm).
// A native addon, so it is required at run time rather than bundled, and only by this format.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { OpError } from "../errors.js";

const RENDERER = "@resvg/resvg-js";
/** Twice the SVG's size: sharp enough for slides. */
const ZOOM = 2;

/** The part of resvg's API used here. */
interface Resvg {
  Resvg: new (svg: string, options: object) => { render(): { asPng(): Buffer } };
}

export function svgToPng(svg: string): Buffer {
  let resvg: Resvg;
  try {
    resvg = createRequire(import.meta.url)(RENDERER);
  } catch (e) {
    throw new OpError(`--format png needs ${RENDERER}, which did not load (${(e as Error).message.split("\n")[0]}): use --format svg`);
  }
  const font = { loadSystemFonts: true, monospaceFamily: monospaceFamily(), defaultFontFamily: monospaceFamily() };
  return new resvg.Resvg(svg, { fitTo: { mode: "zoom", value: ZOOM }, font }).render().asPng();
}

/**
 * The SVG asks for "Courier,monospace". resvg maps the generic family to "Courier New", which few Linux
 * hosts have, and then falls back to any font, proportional ones included: ask fontconfig what this host
 * calls monospace instead, as the desktop would.
 */
function monospaceFamily(): string {
  const res = spawnSync("fc-match", ["-f", "%{family[0]}", "monospace"], { encoding: "utf8" });
  return res.status === 0 && res.stdout.trim() ? res.stdout.trim() : "DejaVu Sans Mono";
}
