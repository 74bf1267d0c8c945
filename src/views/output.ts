// Printing for people and for scripts: borderless tables like docker's, stable JSON, -q ids.
import { UsageError } from "../errors.js";

/** A listing's --format: the default table, JSON, or a Go template as docker takes (`table {{.ID}}` too). */
export type Format = "table" | "json" | { template: string };

export function checkFormat(format: string | undefined): Format {
  const f = format ?? "table";
  if (f === "table" || f === "json") return f;
  // docker would print a format without an action literally, once per row: a typo ("xml") is likelier
  if (f.includes("{{")) return { template: f };
  throw new UsageError(`invalid --format ${JSON.stringify(f)}: table, json or a Go template such as '{{.Name}}'`);
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 4) + "\n");
}

/** docker 23+ `ps`/`network ls --format json`: one object per line. */
export function printJsonLines(rows: unknown[]): void {
  process.stdout.write(rows.map((r) => JSON.stringify(r) + "\n").join(""));
}

/**
 * Rows through a --format template, each a Go struct named like docker's formatter context (its error
 * messages name it) with docker's `.Label "key"` method; `headers` name the columns of `table …` formats.
 */
export async function printTemplated(template: string, rows: object[], type: string, headers: Record<string, string>, labels: (row: any) => Record<string, string> = () => ({})): Promise<void> {
  const { goStruct, renderRows } = await import("./gotemplate.js");
  const structs = rows.map((r) => goStruct(type, { ...r }, { Label: (key: string) => labels(r)[key] ?? "" }));
  process.stdout.write(renderRows(template, structs, headers));
}

/** `inspect -f`: the template run over each object's inspect JSON, one line each (docker inspect --format). */
export async function printInspectTemplated(template: string, objects: object[]): Promise<void> {
  const { parseTemplate } = await import("./gotemplate.js");
  // docker falls back to the raw JSON with missingkey=error: a field the object lacks is an error
  const tmpl = parseTemplate(template, { missingKey: "error" });
  process.stdout.write(objects.map((o) => tmpl.execute(o) + "\n").join(""));
}

/**
 * Docker-style table: upper-case headers, columns three spaces apart, no borders. Plain padding (a table
 * library's layout pass cost 400 ms for `ps` with 1000 containers; this is linear).
 */
export async function printTable(headers: string[], rows: string[][]): Promise<void> {
  const widths = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ""))));
  const line = (cells: string[]) => cells.map((c, i) => c + " ".repeat(widths[i] - displayWidth(c))).join("   ").trimEnd();
  process.stdout.write([headers, ...rows].map(line).join("\n") + "\n");
}

/** Terminal columns a string takes: East Asian wide characters (Hangul, CJK, fullwidth, emoji) take two. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x1100) width += 1;
    else if (WIDE.some(([lo, hi]) => cp >= lo && cp <= hi)) width += 2;
    else if (!(cp >= 0x300 && cp <= 0x36f) && cp !== 0x200d && !(cp >= 0xfe00 && cp <= 0xfe0f)) width += 1;
  }
  return width;
}

const WIDE: Array<[number, number]> = [
  [0x1100, 0x115f], [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa000, 0xa4cf],
  [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe30, 0xfe4f], [0xff00, 0xff60], [0xffe0, 0xffe6], [0x1f300, 0x1f64f],
  [0x1f900, 0x1f9ff], [0x20000, 0x3fffd],
];
