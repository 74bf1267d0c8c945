// Printing for people and for scripts: borderless tables like docker's, stable JSON, -q ids.

export type Format = "table" | "json";

export function checkFormat(format: string | undefined): Format {
  const f = format ?? "table";
  if (f !== "table" && f !== "json") throw Object.assign(new Error(`invalid --format ${JSON.stringify(f)}: table or json`), { usage: true });
  return f;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 4) + "\n");
}

/** Docker-style table: upper-case headers, columns three spaces apart, no borders. */
export async function printTable(headers: string[], rows: string[][]): Promise<void> {
  const { default: Table } = await import("cli-table3");
  const blank = { top: "", "top-mid": "", "top-left": "", "top-right": "", bottom: "", "bottom-mid": "", "bottom-left": "", "bottom-right": "", left: "", "left-mid": "", mid: "", "mid-mid": "", right: "", "right-mid": "", middle: "   " };
  const table = new Table({ head: headers, chars: blank, style: { head: [], border: [], "padding-left": 0, "padding-right": 0 } });
  table.push(...rows);
  process.stdout.write(table.toString().split("\n").map((l) => l.trimEnd()).join("\n") + "\n");
}

export const useColor = () => !process.env.NO_COLOR && !!process.stderr.isTTY;
