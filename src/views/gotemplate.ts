// Go's text/template, the part `docker … --format` scripts use, with Docker's extra functions
// (docker/cli templates/templates.go). Loaded only when a --format is a template: no JS library follows
// Go's semantics closely enough (variables, pipelines, `else if`, trim markers, Go's value printing).
// Errors read like Go's ("template: :1:2: executing "" at <.Nope>: …") and are UsageErrors (exit 2).
import { UsageError } from "../errors.js";

// ---- values -------------------------------------------------------------------------------------------

const GO_TYPE = Symbol("goType");

/**
 * Marks an object as a Go struct named `type`: a field it lacks is an error naming the type, as Docker's
 * formatter contexts give. Methods (e.g. Label) are attached non-enumerable so `json .` leaves them out.
 * Plain objects are Go maps.
 */
export function goStruct<T extends object>(type: string, fields: T, methods: Record<string, (...args: any[]) => unknown> = {}): T {
  Object.defineProperty(fields, GO_TYPE, { value: type });
  for (const [name, fn] of Object.entries(methods)) Object.defineProperty(fields, name, { value: fn });
  return fields;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function goTypeOf(v: unknown): string {
  if (v === null || v === undefined) return "interface {}";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  if (Array.isArray(v)) return "[]interface {}";
  return (v as any)[GO_TYPE] ?? "map[string]interface {}";
}

/** Go's empty values are false; everything else is true. */
function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v) && !(v as any)[GO_TYPE]) return Object.keys(v).length > 0;
  return true;
}

/** fmt.Sprint of one value: maps as map[k:v] with sorted keys, slices as [a b], nil as <no value>. */
function show(v: unknown, nested = false): string {
  if (v === null || v === undefined) return nested ? "<nil>" : "<no value>";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map((e) => show(e, true)).join(" ")}]`;
  if ((v as any)[GO_TYPE]) return `{${Object.values(v).map((e) => show(e, true)).join(" ")}}`;
  return `map[${Object.keys(v as object).sort().map((k) => `${k}:${show((v as any)[k], true)}`).join(" ")}]`;
}

// ---- lexing -------------------------------------------------------------------------------------------

type Tok =
  | { t: "field"; idents: string[]; pos: number; end: number }
  | { t: "var"; name: string; idents: string[]; pos: number; end: number }
  | { t: "ident" | "str" | "num" | "bool" | "nil" | "(" | ")" | "|" | ":=" | "=" | "," | "dot"; v: string; pos: number; end: number };

const KEYWORDS = new Set(["if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"]);

function lexAction(src: string, from: number, to: number, fail: (pos: number, msg: string) => never): Tok[] {
  const toks: Tok[] = [];
  let i = from;
  const identAt = () => /[\p{L}_][\p{L}\p{N}_]*/uy;
  const chain = (j: number): { idents: string[]; end: number } => {
    const idents: string[] = [];
    while (src[j] === "." && /[\p{L}_]/u.test(src[j + 1] ?? "")) {
      const re = identAt();
      re.lastIndex = j + 1;
      const m = re.exec(src)!;
      idents.push(m[0]);
      j = j + 1 + m[0].length;
    }
    return { idents, end: j };
  };
  while (i < to) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    if (c === ".") {
      const { idents, end } = chain(i);
      if (idents.length) { toks.push({ t: "field", idents, pos: start, end }); i = end; continue; }
      if (/[0-9]/.test(src[i + 1] ?? "")) { /* a number like .5 */ } else { toks.push({ t: "dot", v: ".", pos: i, end: i + 1 }); i++; continue; }
    }
    if (c === "$") {
      const re = /\$[\p{L}\p{N}_]*/uy;
      re.lastIndex = i;
      const m = re.exec(src)!;
      const { idents, end } = chain(i + m[0].length);
      toks.push({ t: "var", name: m[0], idents, pos: start, end });
      i = end;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < to && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      if (j >= to) fail(start, "unterminated quoted string");
      let value: string;
      try { value = JSON.parse(src.slice(i, j + 1)); } catch { fail(start, `bad string syntax: ${src.slice(i, j + 1)}`); }
      toks.push({ t: "str", v: value, pos: start, end: j + 1 });
      i = j + 1;
      continue;
    }
    if (c === "`") {
      const j = src.indexOf("`", i + 1);
      if (j < 0 || j >= to) fail(start, "unterminated raw quoted string");
      toks.push({ t: "str", v: src.slice(i + 1, j), pos: start, end: j + 1 });
      i = j + 1;
      continue;
    }
    if (c === "'") {
      const m = /'(\\.|[^'\\])'/y;
      m.lastIndex = i;
      const r = m.exec(src);
      if (!r) fail(start, "unterminated character constant");
      const ch = r[1].startsWith("\\") ? JSON.parse(`"${r[1]}"`) : r[1];
      toks.push({ t: "num", v: String(ch.codePointAt(0)), pos: start, end: i + r[0].length });
      i += r[0].length;
      continue;
    }
    if (/[0-9+\-.]/.test(c)) {
      const m = /[+-]?(0x[0-9a-fA-F_]+|[0-9_]*\.?[0-9_]+([eE][+-]?[0-9]+)?)/y;
      m.lastIndex = i;
      const r = m.exec(src);
      if (!r || r[0] === "" || Number.isNaN(Number(r[0].replace(/_/g, "")))) fail(start, `bad number syntax: "${src.slice(i, i + 1)}"`);
      toks.push({ t: "num", v: r[0].replace(/_/g, ""), pos: start, end: i + r[0].length });
      i += r[0].length;
      continue;
    }
    if (c === ":" && src[i + 1] === "=") { toks.push({ t: ":=", v: ":=", pos: i, end: i + 2 }); i += 2; continue; }
    if ("()|=,".includes(c)) {
      toks.push({ t: c as "(", v: c, pos: i, end: i + 1 });
      i++;
      if (c === ")") {
        const { idents, end } = chain(i);
        if (idents.length) { toks.push({ t: "field", idents, pos: i, end, chained: true } as Tok); i = end; }
      }
      continue;
    }
    const re = identAt();
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) fail(start, `unexpected "${c}" in command`);
    const word = m[0];
    toks.push({ t: word === "true" || word === "false" ? "bool" : word === "nil" ? "nil" : "ident", v: word, pos: start, end: i + word.length });
    i += word.length;
  }
  return toks;
}

// ---- parsing ------------------------------------------------------------------------------------------

type Arg =
  | { k: "field"; idents: string[]; pos: number; text: string }
  | { k: "var"; name: string; idents: string[]; pos: number; text: string }
  | { k: "func"; name: string; pos: number; text: string }
  | { k: "lit"; value: unknown; pos: number; text: string }
  | { k: "dot"; pos: number; text: string }
  | { k: "pipe"; pipe: Pipe; idents: string[]; pos: number; text: string };
interface Cmd { args: Arg[]; pos: number; text: string }
interface Pipe { decl: string[]; assign: boolean; cmds: Cmd[]; pos: number }
type Node =
  | { k: "text"; text: string }
  | { k: "action"; pipe: Pipe; pos: number }
  | { k: "if" | "with" | "range"; pipe: Pipe; list: Node[]; elseList: Node[] | null; pos: number }
  | { k: "break" | "continue"; pos: number };

/** Go's missingkey option for a map lacking a key: <no value>, an error, or (header maps) "". */
type MissingKey = "default" | "error" | "zero";

export interface Template {
  execute(data: unknown): string;
}

export const DOCKER_FUNCS: Record<string, (...args: any[]) => unknown> = {
  json: (v: unknown) => JSON.stringify(v ?? null),
  split: (s: unknown, sep: unknown) => str(s).split(str(sep)),
  join: (a: unknown, sep: unknown) => strings(a).join(str(sep)),
  title: (s: unknown) => str(s).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, pre: string, ch: string) => pre + ch.toUpperCase()),
  lower: (s: unknown) => str(s).toLowerCase(),
  upper: (s: unknown) => str(s).toUpperCase(),
  // docker's padWithSpace and truncateWithLength
  pad: (s: unknown, prefix: unknown, suffix: unknown) => (str(s) === "" ? "" : " ".repeat(int(prefix)) + s + " ".repeat(int(suffix))),
  truncate: (s: unknown, n: unknown) => (str(s).length < int(n) ? s : str(s).slice(0, int(n))),
};

/** Header rendering of `table` formats: Docker's HeaderFunctions leave the header text as it is. */
const HEADER_FUNCS: Record<string, (...args: any[]) => unknown> = {
  ...DOCKER_FUNCS,
  ...Object.fromEntries(["json", "split", "join", "title", "lower", "upper", "truncate"].map((f) => [f, (v: unknown) => v])),
};

class ArgTypeError extends Error {}
function str(v: unknown): string {
  if (typeof v !== "string") throw new ArgTypeError(`wrong type for value; expected string; got ${goTypeOf(v)}`);
  return v;
}
function int(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new ArgTypeError(`wrong type for value; expected int; got ${goTypeOf(v)}`);
  return v;
}
function strings(v: unknown): string[] {
  if (!Array.isArray(v) || v.some((e) => typeof e !== "string")) throw new ArgTypeError(`wrong type for value; expected []string; got ${goTypeOf(v)}`);
  return v;
}

const BUILTINS = new Set(["and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge"]);

/** Parses `src` (Go text/template syntax) with Docker's functions; throws a UsageError shaped like Go's. */
export function parseTemplate(src: string, opts: { funcs?: Record<string, (...args: any[]) => unknown>; missingKey?: MissingKey } = {}): Template {
  const funcs = opts.funcs ?? DOCKER_FUNCS;
  const lineOf = (pos: number) => src.slice(0, pos).split("\n").length;
  const fail = (pos: number, msg: string): never => {
    throw new UsageError(`template: :${lineOf(pos)}: ${msg}`);
  };

  // split into text and actions, applying the trim markers {{- and -}}
  type Piece = { text: string } | { toks: Tok[]; pos: number; raw: string };
  const pieces: Piece[] = [];
  let i = 0;
  let trimNext = false;
  while (i <= src.length) {
    const open = src.indexOf("{{", i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, "");
    trimNext = false;
    if (open < 0) { if (text) pieces.push({ text }); break; }
    let from = open + 2;
    if (/^-[ \t\r\n]/.test(src.slice(from, from + 2))) { text = text.replace(/\s+$/, ""); from += 2; }
    if (text) pieces.push({ text });
    // the action ends at the first }} outside a quoted string
    let j = from;
    let close = -1;
    while (j < src.length) {
      const c = src[j];
      if (src.startsWith("/*", j) && src.slice(from, j).trim() === "") {
        const end = src.indexOf("*/", j + 2);
        if (end < 0) fail(open, "unclosed comment");
        j = end + 2;
        continue;
      }
      if (c === '"' || c === "`" || c === "'") {
        let k = j + 1;
        while (k < src.length && src[k] !== c && src[k] !== "\n") k += src[k] === "\\" && c !== "`" ? 2 : 1;
        j = k + 1;
        continue;
      }
      if (src.startsWith("}}", j)) { close = j; break; }
      j++;
    }
    if (close < 0) fail(open, "unclosed action");
    let to = close;
    if (/[ \t\r\n]-$/.test(src.slice(from, to))) { to -= 2; trimNext = true; }
    const body = src.slice(from, to).trim();
    if (!body.startsWith("/*")) {
      const toks = lexAction(src, from, to, fail);
      if (!toks.length) fail(open, "missing value for command");
      pieces.push({ toks, pos: toks[0].pos, raw: body });
    }
    i = close + 2;
  }

  // recursive descent over the pieces
  let p = 0;
  const declared: string[][] = [["$"]];
  const isVar = (name: string) => declared.some((scope) => scope.includes(name));

  function parseList(stopAt: Set<string>): { list: Node[]; stop: string; stopPiece?: { toks: Tok[]; pos: number } } {
    const list: Node[] = [];
    while (p < pieces.length) {
      const piece = pieces[p++];
      if ("text" in piece) { list.push({ k: "text", text: piece.text }); continue; }
      const [first] = piece.toks;
      const word = first.t === "ident" && KEYWORDS.has(first.v) ? first.v : "";
      if (word === "end" || word === "else") {
        if (!stopAt.has(word)) fail(piece.pos, `unexpected {{${word}}}`);
        return { list, stop: word, stopPiece: piece };
      }
      if (word === "if" || word === "with" || word === "range") { list.push(parseControl(word, piece.toks.slice(1), piece.pos)); continue; }
      if (word === "break" || word === "continue") { list.push({ k: word, pos: piece.pos }); continue; }
      if (word) fail(piece.pos, `{{${word}}} is not supported`);
      list.push({ k: "action", pipe: parsePipe(piece.toks, piece.pos, false), pos: piece.pos });
    }
    if (stopAt.size) fail(src.length, "unexpected EOF");
    return { list, stop: "" };
  }

  function parseControl(kind: "if" | "with" | "range", toks: Tok[], pos: number): Node {
    declared.push([]);
    const pipe = parsePipe(toks, pos, kind === "range");
    if (!pipe.cmds.length) fail(pos, `missing value for ${kind}`);
    const body = parseList(new Set(["end", "else"]));
    let elseList: Node[] | null = null;
    declared.pop();
    if (body.stop === "else") {
      const rest = body.stopPiece!.toks.slice(1);
      declared.push([]);
      if (rest.length && rest[0].t === "ident" && (rest[0].v === "if" || rest[0].v === "with") && kind !== "range") {
        // {{else if …}} / {{else with …}}: a nested control sharing this one's {{end}}
        elseList = [parseControl(rest[0].v as "if", rest.slice(1), body.stopPiece!.pos)];
      } else {
        if (rest.length) fail(body.stopPiece!.pos, "unexpected tokens after else");
        elseList = parseList(new Set(["end"])).list;
      }
      declared.pop();
    }
    return { k: kind, pipe, list: body.list, elseList, pos };
  }

  function parsePipe(toks: Tok[], pos: number, inRange: boolean): Pipe {
    let at = 0;
    const decl: string[] = [];
    let assign = false;
    // $x := …, $x = …, and in range $i, $e := …
    const declEnd = toks.findIndex((t) => t.t === ":=" || t.t === "=");
    if (declEnd > 0 && toks.slice(0, declEnd).every((t, n) => (n % 2 === 0 ? t.t === "var" && t.idents.length === 0 : t.t === ","))) {
      for (let n = 0; n < declEnd; n += 2) decl.push((toks[n] as { name: string }).name);
      if (decl.length > (inRange ? 2 : 1)) fail(pos, "too many declarations");
      assign = toks[declEnd].t === "=";
      if (assign) decl.forEach((v) => isVar(v) || fail(pos, `undefined variable "${v}"`));
      at = declEnd + 1;
    }
    const cmds: Cmd[] = [];
    const ts = toks.slice(at);
    let k = 0;
    const parseOperand = (): Arg | null => {
      const t = ts[k];
      if (!t || t.t === "|" || t.t === ")") return null;
      k++;
      const text = src.slice(t.pos, t.end);
      let arg: Arg;
      switch (t.t) {
        case "field": arg = { k: "field", idents: t.idents, pos: t.pos, text }; break;
        case "var":
          if (!isVar(t.name)) fail(t.pos, `undefined variable "${t.name}"`);
          arg = { k: "var", name: t.name, idents: t.idents, pos: t.pos, text };
          break;
        case "dot": arg = { k: "dot", pos: t.pos, text }; break;
        case "str": arg = { k: "lit", value: t.v, pos: t.pos, text }; break;
        case "num": arg = { k: "lit", value: Number(t.v), pos: t.pos, text }; break;
        case "bool": arg = { k: "lit", value: t.v === "true", pos: t.pos, text }; break;
        case "nil": arg = { k: "lit", value: null, pos: t.pos, text }; break;
        case "ident":
          if (KEYWORDS.has(t.v)) fail(t.pos, `unexpected <${t.v}> in command`);
          if (!BUILTINS.has(t.v) && !(t.v in funcs)) fail(t.pos, `function "${t.v}" not defined`);
          arg = { k: "func", name: t.v, pos: t.pos, text };
          break;
        case "(": {
          const start = k;
          let depth = 1;
          while (k < ts.length && depth) { if (ts[k].t === "(") depth++; if (ts[k].t === ")") depth--; k++; }
          if (depth) fail(t.pos, "unclosed left paren");
          const inner = parsePipe(ts.slice(start, k - 1), t.pos, false);
          const next = ts[k] as any;
          const idents = next?.t === "field" && next.chained ? (k++, next.idents) : [];
          arg = { k: "pipe", pipe: inner, idents, pos: t.pos, text: src.slice(t.pos, ts[k - 1].end) };
          break;
        }
        default: fail(t.pos, `unexpected "${t.v}" in operand`);
      }
      return arg!;
    };
    while (k < ts.length) {
      const args: Arg[] = [];
      for (let a = parseOperand(); a; a = parseOperand()) args.push(a);
      if (!args.length) fail(pos, `missing value for command`);
      cmds.push({ args, pos: args[0].pos, text: src.slice(args[0].pos, ts[k - 1].end) });
      if (k < ts.length) {
        if (ts[k].t !== "|") fail(ts[k].pos, `unexpected "${(ts[k] as any).v}" in operand`);
        k++;
        if (k >= ts.length) fail(pos, "missing command after |");
      }
    }
    cmds.slice(1).forEach((c) => c.args[0].k === "lit" && fail(c.pos, "non executable command in pipeline stage 2"));
    if (!assign) declared[declared.length - 1].push(...decl);
    return { decl, assign, cmds, pos };
  }

  const root = parseList(new Set()).list;
  return { execute: (data) => execute(src, root, data, funcs, opts.missingKey ?? "default") };
}

// ---- execution ----------------------------------------------------------------------------------------

class Break { constructor(readonly kind: "break" | "continue") {} }

function execute(src: string, root: Node[], data: unknown, funcs: Record<string, (...args: any[]) => unknown>, missingKey: MissingKey): string {
  let out = "";
  const vars: Array<{ name: string; value: unknown }> = [{ name: "$", value: data }];
  const fail = (at: { pos: number; text: string }, msg: string): never => {
    const before = src.slice(0, at.pos);
    const line = before.split("\n").length;
    const col = at.pos - (before.lastIndexOf("\n") + 1);
    const context = at.text.length > 20 ? `${at.text.slice(0, 20)}...` : at.text;
    throw new UsageError(`template: :${line}:${col}: executing "" at <${context}>: ${msg}`);
  };
  const lookup = (name: string) => {
    for (let n = vars.length - 1; n >= 0; n--) if (vars[n].name === name) return vars[n];
    throw new Error(`undefined variable ${name}`);
  };

  function field(at: Arg, receiver: unknown, name: string, args: unknown[], last: boolean): unknown {
    if (isMap(receiver)) {
      const typed = (receiver as any)[GO_TYPE] as string | undefined;
      const value = (receiver as any)[name];
      if (typeof value === "function" && typed) {
        try { return value.apply(receiver, args); } catch (err) { return fail(at, err instanceof ArgTypeError ? err.message : String(err)); }
      }
      if (args.length && last) fail(at, `${name} has arguments but cannot be invoked as function`);
      if (Object.hasOwn(receiver, name)) return value;
      if (typed) return fail(at, `can't evaluate field ${name} in type ${typed}`);
      if (missingKey === "error") return fail(at, `map has no entry for key "${name}"`);
      return missingKey === "zero" ? "" : undefined;
    }
    if (receiver === null || receiver === undefined) return fail(at, `nil pointer evaluating interface {}.${name}`);
    return fail(at, `can't evaluate field ${name} in type ${goTypeOf(receiver)}`);
  }

  function fields(at: Arg, receiver: unknown, idents: string[], args: unknown[]): unknown {
    let v = receiver;
    idents.forEach((name, n) => (v = field(at, v, name, n === idents.length - 1 ? args : [], n === idents.length - 1)));
    return v;
  }

  function evalArg(dot: unknown, arg: Arg): unknown {
    switch (arg.k) {
      case "lit": return arg.value;
      case "dot": return dot;
      case "field": return fields(arg, dot, arg.idents, []);
      case "var": return fields(arg, lookup(arg.name).value, arg.idents, []);
      case "pipe": return fields(arg, evalPipe(dot, arg.pipe), arg.idents, []);
      case "func": return call(dot, { args: [arg], pos: arg.pos, text: arg.text }, undefined, false);
    }
  }

  function call(dot: unknown, cmd: Cmd, final: unknown, hasFinal: boolean): unknown {
    const [head, ...rest] = cmd.args;
    const lazy = () => [...rest.map((a) => evalArg(dot, a)), ...(hasFinal ? [final] : [])];
    if (head.k !== "func") {
      if (head.k === "field" || head.k === "var" || head.k === "pipe") {
        const receiverIdents = head.idents;
        const base = head.k === "field" ? dot : head.k === "var" ? lookup(head.name).value : evalPipe(dot, head.pipe);
        if (!receiverIdents.length) {
          if (rest.length || hasFinal) fail(head, `can't give argument to non-function ${head.text}`);
          return base;
        }
        return fields(head, base, receiverIdents, lazy());
      }
      if (rest.length || hasFinal) fail(head, `can't give argument to non-function ${head.text}`);
      return evalArg(dot, head);
    }
    const name = head.name;
    // and/or evaluate their arguments only as far as needed, as Go 1.18+ does
    if (name === "and" || name === "or") {
      const all = [...rest.map((a) => () => evalArg(dot, a)), ...(hasFinal ? [() => final] : [])];
      if (!all.length) fail(cmd, `wrong number of args for ${name}: want at least 1 got 0`);
      let v: unknown;
      for (const get of all) { v = get(); if (truthy(v) !== (name === "and")) return v; }
      return v;
    }
    const args = lazy();
    try {
      if (BUILTINS.has(name)) return builtin(name, args);
      const fn = funcs[name];
      if (args.length !== fn.length) fail(cmd, `wrong number of args for ${name}: want ${fn.length} got ${args.length}`);
      return fn(...args);
    } catch (err) {
      if (err instanceof ArgTypeError) return fail(cmd, `error calling ${name}: ${err.message}`);
      throw err;
    }
  }

  function evalPipe(dot: unknown, pipe: Pipe): unknown {
    let value: unknown;
    pipe.cmds.forEach((cmd, n) => (value = call(dot, cmd, value, n > 0)));
    if (pipe.decl.length === 1) {
      if (pipe.assign) lookup(pipe.decl[0]).value = value;
      else vars.push({ name: pipe.decl[0], value });
    }
    return value;
  }

  function walk(dot: unknown, list: Node[]): void {
    for (const node of list) {
      switch (node.k) {
        case "text": out += node.text; break;
        case "action": {
          const v = evalPipe(dot, node.pipe);
          if (!node.pipe.decl.length) out += show(v);
          break;
        }
        case "break": case "continue": throw new Break(node.k);
        case "if": case "with": {
          const mark = vars.length;
          const v = evalPipe(dot, node.pipe);
          if (truthy(v)) walk(node.k === "with" ? v : dot, node.list);
          else if (node.elseList) walk(dot, node.elseList);
          vars.length = mark;
          break;
        }
        case "range": {
          const mark = vars.length;
          const names = node.pipe.decl;
          const pipe = { ...node.pipe, decl: [] };
          const v = evalPipe(dot, pipe);
          const entries: Array<[unknown, unknown]> = Array.isArray(v) ? v.map((e, n) => [n, e])
            : isMap(v) ? Object.keys(v).sort().map((k) => [k, v[k]])
            : typeof v === "number" && Number.isInteger(v) ? Array.from({ length: Math.max(0, v) }, (_, n) => [n, n])
            : v === null || v === undefined ? []
            : fail({ pos: node.pos, text: "range" }, `range can't iterate over ${show(v)}`);
          for (const [key, elem] of entries) {
            vars.length = mark;
            if (names.length === 1) vars.push({ name: names[0], value: elem });
            if (names.length === 2) vars.push({ name: names[0], value: key }, { name: names[1], value: elem });
            try { walk(elem, node.list); } catch (err) {
              if (!(err instanceof Break)) throw err;
              if (err.kind === "break") break;
            }
          }
          vars.length = mark;
          if (!entries.length && node.elseList) walk(dot, node.elseList);
          break;
        }
      }
    }
  }

  walk(data, root);
  return out;
}

// ---- Go's builtin functions -----------------------------------------------------------------------------

function comparable(a: unknown, b: unknown): [unknown, unknown] {
  const kind = (v: unknown) => (v === null || v === undefined ? "nil" : typeof v);
  if (kind(a) !== kind(b)) throw new ArgTypeError("incompatible types for comparison");
  if (typeof a === "object" && a !== null) throw new ArgTypeError("non-comparable type");
  return [a, b];
}

function ordered(a: unknown, b: unknown): number {
  const [x, y] = comparable(a, b);
  if (typeof x !== "number" && typeof x !== "string") throw new ArgTypeError("invalid type for comparison");
  return x < (y as typeof x) ? -1 : x > (y as typeof x) ? 1 : 0;
}

function builtin(name: string, args: unknown[]): unknown {
  const want = (n: number) => {
    if (args.length !== n) throw new ArgTypeError(`wrong number of args for ${name}: want ${n} got ${args.length}`);
  };
  switch (name) {
    case "not": want(1); return !truthy(args[0]);
    case "len": {
      want(1);
      const [v] = args;
      if (typeof v === "string") return Buffer.byteLength(v);
      if (Array.isArray(v)) return v.length;
      if (isMap(v)) return Object.keys(v).length;
      throw new ArgTypeError(`len of type ${goTypeOf(v)}`);
    }
    case "index": {
      if (!args.length) throw new ArgTypeError("wrong number of args for index: want at least 1 got 0");
      let v = args[0];
      for (const key of args.slice(1)) {
        if (Array.isArray(v) || typeof v === "string") {
          const n = int(key);
          if (n < 0 || n >= v.length) throw new ArgTypeError(`index out of range: ${n}`);
          v = typeof v === "string" ? v.charCodeAt(n) : v[n];
        } else if (isMap(v)) v = Object.hasOwn(v, str(key)) ? v[key as string] : ""; // docker's maps hold strings: a missing key is ""
        else if (v === null || v === undefined) throw new ArgTypeError("index of untyped nil");
        else throw new ArgTypeError(`can't index item of type ${goTypeOf(v)}`);
      }
      return v;
    }
    case "slice": {
      const [v, ...bounds] = args;
      if (typeof v !== "string" && !Array.isArray(v)) throw new ArgTypeError(`can't slice item of type ${goTypeOf(v)}`);
      const [from = 0, to = v.length] = bounds.map(int);
      if (from < 0 || to > v.length || from > to) throw new ArgTypeError(`index out of range: ${from}:${to}`);
      return v.slice(from, to);
    }
    case "eq": {
      if (args.length < 2) throw new ArgTypeError("missing argument for comparison");
      return args.slice(1).some((b) => { const [x, y] = comparable(args[0], b); return x === y || (x == null && y == null); });
    }
    case "ne": { want(2); const [x, y] = comparable(args[0], args[1]); return !(x === y || (x == null && y == null)); }
    case "lt": want(2); return ordered(args[0], args[1]) < 0;
    case "le": want(2); return ordered(args[0], args[1]) <= 0;
    case "gt": want(2); return ordered(args[0], args[1]) > 0;
    case "ge": want(2); return ordered(args[0], args[1]) >= 0;
    case "print": return sprint(args);
    case "println": return args.map((a) => show(a, true)).join(" ") + "\n";
    case "printf": return sprintf(str(args[0]), args.slice(1));
  }
  throw new Error(`no builtin ${name}`);
}

/** fmt.Sprint: a space between operands when neither is a string. */
function sprint(args: unknown[]): string {
  return args.map((a, n) => (n > 0 && typeof a !== "string" && typeof args[n - 1] !== "string" ? " " : "") + show(a, true)).join("");
}

/** fmt.Sprintf for the verbs scripts use: %v %s %d %q %f %x %t %% with flags -, 0, width and precision. */
function sprintf(format: string, args: unknown[]): string {
  let n = 0;
  const out = format.replace(/%([-+ 0#]*)(\d*)(?:\.(\d*))?([a-zA-Z%])/g, (_m, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === "%") return "%";
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const v = args[n++];
    let s: string;
    switch (verb) {
      case "v": case "s": s = show(v, true); if (verb === "s" && prec !== undefined) s = s.slice(0, Number(prec)); break;
      case "d": s = typeof v === "number" ? String(Math.trunc(v)) : `%!d(${goTypeOf(v)}=${show(v, true)})`; break;
      case "f": s = typeof v === "number" ? v.toFixed(prec === undefined ? 6 : Number(prec || 0)) : `%!f(${goTypeOf(v)}=${show(v, true)})`; break;
      case "q": s = JSON.stringify(typeof v === "string" ? v : show(v, true)); break;
      case "x": s = typeof v === "number" ? v.toString(16) : Buffer.from(show(v, true)).toString("hex"); break;
      case "t": s = typeof v === "boolean" ? String(v) : `%!t(${goTypeOf(v)}=${show(v, true)})`; break;
      default: s = `%!${verb}(${goTypeOf(v)}=${show(v, true)})`;
    }
    const w = Number(width || 0);
    if (s.length >= w) return s;
    if (flags.includes("-")) return s + " ".repeat(w - s.length);
    return (flags.includes("0") && /[dfx]/.test(verb) ? "0" : " ").repeat(w - s.length) + s;
  });
  return n < args.length ? `${out}%!(EXTRA ${args.slice(n).map((a) => `${goTypeOf(a)}=${show(a, true)}`).join(", ")})` : out;
}

// ---- docker's formatter: `table …` formats and their tab-aligned output ---------------------------------

/**
 * Renders `rows` with a --format template as `docker ps`/`network ls` do: `table TEMPLATE` adds a header
 * row (the template run over `headers`, Docker's column names) and aligns the tab-separated cells like
 * Docker's tabwriter (min width 10, padding 3); otherwise one line per row. Everything is rendered before
 * anything is printed, so a template error prints nothing.
 */
export function renderRows(format: string, rows: unknown[], headers: Record<string, string>): string {
  // docker's Context.preFormat: "table" prefix off, spaces trimmed, a written \t or \n is the character
  const table = format.startsWith("table");
  const body = (table ? format.slice("table".length) : format).replace(/^ +| +$/g, "").replace(/\\t/g, "\t").replace(/\\n/g, "\n");
  const tmpl = parseTemplate(body);
  const lines = rows.map((r) => tmpl.execute(r));
  if (!table) return lines.map((l) => `${l}\n`).join("");
  const header = parseTemplate(body, { funcs: HEADER_FUNCS, missingKey: "zero" }).execute(headers);
  return tabwrite([header, ...lines]);
}

function tabwrite(lines: string[]): string {
  const cells = lines.flatMap((l) => l.split("\n")).map((l) => l.split("\t"));
  const widths: number[] = [];
  for (const row of cells) row.slice(0, -1).forEach((c, n) => (widths[n] = Math.max(widths[n] ?? 0, c.length + 3, 10)));
  return cells.map((row) => row.map((c, n) => (n < row.length - 1 ? c.padEnd(widths[n]) : c)).join("")).join("\n") + "\n";
}
