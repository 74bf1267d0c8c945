// The Go text/template engine behind --format. Cases come from:
//  [fmt]  https://docs.docker.com/engine/cli/formatting/ (Docker's functions)
//  [ps]   https://docs.docker.com/reference/cli/docker/container/ls/#format
//  [netls] https://docs.docker.com/reference/cli/docker/network/ls/#format
//  [insp] https://docs.docker.com/reference/cli/docker/inspect/#examples
//  [go]   https://pkg.go.dev/text/template (Actions, Pipelines, Variables, Examples, Functions)
//  [cli]  docker/cli templates/templates.go and cli/command/formatter (pad, truncate, table headers)
import { describe, expect, it } from "vitest";
import { goStruct, parseTemplate, renderRows } from "../../src/views/gotemplate.js";
import { UsageError } from "../../src/errors.js";

const run = (src: string, data: unknown = {}, missingKey?: "error") => parseTemplate(src, { missingKey }).execute(data);
const failure = (src: string, data: unknown = {}, missingKey?: "error") => {
  try {
    run(src, data, missingKey);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`${src} did not fail`);
};

const container = {
  Id: "f2a8c3e1", Name: "/web", Args: ["-c", "sleep 1"], Config: { Image: "ubuntu:22.04", Labels: { "com.example.vendor": "ACME" } },
  NetworkSettings: {
    Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] },
    Networks: { bridge: { IPAddress: "172.17.0.2", MacAddress: "02:42:ac:11:00:02" }, red: { IPAddress: "10.1.0.2", MacAddress: "02:42:0a:01:00:02" } },
  },
  State: { Running: true, Pid: 4242 },
};

describe("Docker's documented examples", () => {
  it("join, lower, upper, title, split, println, json [fmt]", () => {
    expect(run('{{join .Args " , "}}', container)).toBe("-c , sleep 1");
    expect(run("{{lower .Name}}", { Name: "/WEB" })).toBe("/web");
    expect(run("{{upper .Name}}", container)).toBe("/WEB");
    expect(run("{{title .Name}}", container)).toBe("/Web");
    expect(run('{{split .Config.Image ":"}}', container)).toBe("[ubuntu 22.04]");
    expect(run("{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}", container)).toBe("172.17.0.2\n10.1.0.2\n");
    expect(run("{{json .Config.Labels}}", container)).toBe('{"com.example.vendor":"ACME"}');
    expect(JSON.parse(run("{{json .}}", container))).toEqual(container);
  });

  it("pad and truncate as docker/cli defines them [cli]", () => {
    expect(run("[{{pad .Name 2 3}}]", container)).toBe("[  /web   ]");
    expect(run("[{{pad .Name 2 3}}]", { Name: "" })).toBe("[]");
    expect(run("{{truncate .Id 4}}", container)).toBe("f2a8");
    expect(run("{{truncate .Id 40}}", container)).toBe("f2a8c3e1");
  });

  it("inspect: ranges, index, nested fields [insp]", () => {
    expect(run("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)).toBe("172.17.0.210.1.0.2");
    expect(run("{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}", { NetworkSettings: { Networks: { b: { MacAddress: "02:42" } } } })).toBe("02:42");
    expect(run("{{.Config.Image}}", container)).toBe("ubuntu:22.04");
    expect(run("{{range $p, $conf := .NetworkSettings.Ports}} {{$p}} -> {{(index $conf 0).HostPort}} {{end}}", container)).toBe(" 80/tcp -> 8080 ");
    expect(run('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', container)).toBe("8080");
    expect(run("{{.NetworkSettings.Networks.red.IPAddress}}", container)).toBe("10.1.0.2");
    expect(run("{{.State.Pid}} {{.State.Running}}", container)).toBe("4242 true");
  });

  it("network inspect: index with a dotted key, range over Containers (the brief's examples)", () => {
    const net = { Options: { "com.docker.network.bridge.name": "ctbr-red" }, Containers: { a1: { Name: "web" }, b2: { Name: "db" } } };
    expect(run('{{index .Options "com.docker.network.bridge.name"}}', net)).toBe("ctbr-red");
    expect(run("{{range .Containers}}{{.Name}} {{end}}", net)).toBe("web db ");
    // a key Docker's typed map[string]string lacks indexes to ""
    expect(run('[{{index .Options "nope"}}]', net)).toBe("[]");
  });

  it("ps and network ls: rows are docker's formatter contexts, with .Label [ps] [netls]", () => {
    const row = goStruct("*formatter.ContainerContext", { ID: "abc", Names: "web", Command: "sleep 1" }, { Label: (k: string) => (k === "com.x" ? "1" : "") });
    expect(renderRows("{{.ID}}: {{.Command}}", [row], {})).toBe("abc: sleep 1\n");
    expect(renderRows('{{.Names}} {{.Label "com.x"}}|{{.Label "other"}}', [row], {})).toBe("web 1|\n");
    expect(JSON.parse(run("{{json .}}", row))).toEqual({ ID: "abc", Names: "web", Command: "sleep 1" });
  });
});

describe("table formats [ps] [cli]", () => {
  const headers = { ID: "CONTAINER ID", Names: "NAMES", Labels: "LABELS" };
  const rows = [{ ID: "4b3c0a1e2d3f", Names: "web", Labels: "a=1" }, { ID: "9f8e", Names: "a-much-longer-name", Labels: "" }];

  it("heads the columns with docker's titles and aligns them like its tabwriter (min 10, padding 3)", () => {
    expect(renderRows("table {{.ID}}\\t{{.Names}}", rows, headers)).toBe(
      "CONTAINER ID   NAMES\n" +
      "4b3c0a1e2d3f   web\n" +
      "9f8e           a-much-longer-name\n",
    );
    expect(renderRows("table {{.Names}}\t{{.Labels}}", rows, headers).split("\n")[0]).toBe("NAMES                LABELS");
  });

  it("keeps the header for functions that would change it, and prints it with no rows", () => {
    expect(renderRows("table {{upper .Names}}\\t{{json .ID}}", [], headers)).toBe("NAMES     CONTAINER ID\n");
    expect(renderRows("table {{.Nope}}", [], headers)).toBe("\n");
  });

  it("without table: one line a row, a written \\n is a newline", () => {
    expect(renderRows("{{.Names}}\\n-", rows, headers)).toBe("web\n-\na-much-longer-name\n-\n");
  });
});

describe("Go's actions, pipelines and variables [go]", () => {
  it("the package documentation's examples all print \"output\" quoted", () => {
    for (const src of [
      '{{"\\"output\\""}}', "{{`\"output\"`}}", '{{printf "%q" "output"}}', '{{"output" | printf "%q"}}',
      '{{printf "%q" (print "out" "put")}}', '{{"put" | printf "%s%s" "out" | printf "%q"}}', '{{"output" | printf "%s" | printf "%q"}}',
      '{{with "output"}}{{printf "%q" .}}{{end}}', '{{with $x := "output" | printf "%q"}}{{$x}}{{end}}',
      '{{with $x := "output"}}{{printf "%q" $x}}{{end}}', '{{with $x := "output"}}{{$x | printf "%q"}}{{end}}',
    ]) expect(run(src), src).toBe('"output"');
  });

  it("trim markers eat the whitespace beside them; comments print nothing", () => {
    expect(run("{{23 -}} < {{- 45}}")).toBe("23<45");
    expect(run("a {{- /* a comment */ -}}\n b")).toBe("ab");
    expect(run("a{{/* c */}}b")).toBe("ab");
    expect(run("{{-3}}")).toBe("-3");
  });

  it("if / else if / else, with / else, range / else, break and continue", () => {
    const t = "{{if .A}}a{{else if .B}}b{{else}}c{{end}}";
    expect([run(t, { A: 1 }), run(t, { A: 0, B: "x" }), run(t, { A: "", B: [] })]).toEqual(["a", "b", "c"]);
    expect(run("{{with .A}}{{.B}}{{else}}none{{end}}", { A: { B: 2 } })).toBe("2");
    expect(run("{{with .A}}{{.B}}{{else}}none{{end}}", { A: {} })).toBe("none");
    expect(run("{{range .}}{{.}},{{else}}empty{{end}}", [])).toBe("empty");
    expect(run("{{range $i, $v := .}}{{if eq $i 2}}{{break}}{{end}}{{if eq $v \"b\"}}{{continue}}{{end}}{{$i}}{{$v}};{{end}}", ["a", "b", "c", "d"])).toBe("0a;");
    // maps range in key order, as Go sorts them
    expect(run("{{range $k, $v := .}}{{$k}}={{$v}} {{end}}", { b: 2, a: 1 })).toBe("a=1 b=2 ");
  });

  it("variables: $ is the data, := declares, = assigns, scopes end with their block", () => {
    expect(run("{{range .L}}{{$.Top}}{{.}}{{end}}", { Top: "t", L: [1, 2] })).toBe("t1t2");
    expect(run('{{$x := "a"}}{{if true}}{{$x = "b"}}{{end}}{{$x}}', {})).toBe("b");
    expect(run("{{$n := len .}}{{$n}}", [1, 2, 3])).toBe("3");
    expect(failure("{{if true}}{{$y := 1}}{{end}}{{$y}}")).toBe('template: :1: undefined variable "$y"');
  });

  it("comparisons and logic", () => {
    expect(run('{{eq .S "a" "b"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}', { S: "b" })).toBe("true true true true true false");
    expect(run("{{and 1 0 2}} {{or 0 \"\" 3}} {{not .}} {{and 1 2}}", [])).toBe("0 3 true 2");
    // and/or stop at the deciding argument: the field after it is never evaluated
    expect(run("{{or true .Nope.Deeper}}", goStruct("T", {}))).toBe("true");
    expect(failure('{{eq 1 "a"}}')).toBe('template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison');
  });

  it("len, index, slice, print, printf", () => {
    expect(run("{{len .}} {{len \"héllo\"}} {{index . 1}} {{slice . 1 2}}", ["a", "b", "c"])).toBe("3 6 b [b]");
    expect(run('{{index .M "k" 0}}', { M: { k: ["x"] } })).toBe("x");
    expect(run('{{print 1 2 "a" 3}}|{{printf "%5s|%-4d|%03d|%.2f|%v|%t" "ab" 7 5 3.14159 .L true}}', { L: [1, "x"] })).toBe('1 2a3|   ab|7   |005|3.14|[1 x]|true');
    expect(run('{{printf "%d %d" 1}}')).toBe("1 %!d(MISSING)");
  });

  it("prints values as Go does: maps sorted, slices in brackets, a missing key as <no value>", () => {
    expect(run("{{.}}", { b: [1, 2], a: { c: true } })).toBe("map[a:map[c:true] b:[1 2]]");
    expect(run("{{.Missing}}", {})).toBe("<no value>");
    expect(run("{{.N}}", { N: null })).toBe("<no value>");
  });
});

describe("errors: one line shaped like Go's, a UsageError (exit 2)", () => {
  it("a field the row's type does not have names the type, as docker ps does", () => {
    const row = goStruct("*formatter.ContainerContext", { ID: "x" });
    expect(failure("{{.Nope}}", row)).toBe('template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext');
    expect(failure("a\nb{{.ID.Deeper}}", row)).toBe('template: :2:3: executing "" at <.ID.Deeper>: can\'t evaluate field Deeper in type string');
  });

  it("inspect's raw JSON runs with missingkey=error, as docker inspect's fallback does", () => {
    expect(failure("{{.Config.Nope}}", container, "error")).toBe('template: :1:2: executing "" at <.Config.Nope>: map has no entry for key "Nope"');
    expect(failure("{{.A.B}}", { A: null }, "error")).toBe('template: :1:2: executing "" at <.A.B>: nil pointer evaluating interface {}.B');
  });

  it("parse errors: unknown function, unclosed action, stray end, missing end, bad operand", () => {
    expect(failure("{{nope .}}")).toBe('template: :1: function "nope" not defined');
    expect(failure("{{.Name")).toBe("template: :1: unclosed action");
    expect(failure("x{{end}}")).toBe("template: :1: unexpected {{end}}");
    expect(failure("{{if .A}}x")).toBe("template: :1: unexpected EOF");
    expect(failure("{{$x}}")).toBe('template: :1: undefined variable "$x"');
    expect(failure("{{.A | 3}}")).toBe("template: :1: non executable command in pipeline stage 2");
  });

  it("wrong argument counts and types for docker's functions", () => {
    expect(failure("{{join .A}}", { A: ["x"] })).toBe('template: :1:2: executing "" at <join .A>: wrong number of args for join: want 2 got 1');
    expect(failure('{{join .A ","}}', { A: "x" })).toBe('template: :1:2: executing "" at <join .A ",">: error calling join: wrong type for value; expected []string; got string');
    expect(failure("{{index .A 5}}", { A: [1] })).toBe('template: :1:2: executing "" at <index .A 5>: error calling index: index out of range: 5');
  });

  it("long contexts are cut at 20 characters as Go does", () => {
    expect(failure("{{.Aaaaaaaaaaaaaaaaaaaaaaaaaa}}", goStruct("T", {}))).toContain("at <.Aaaaaaaaaaaaaaaaaaa...>");
  });
});
