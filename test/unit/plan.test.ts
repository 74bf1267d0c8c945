// Plans print as POSIX sh scripts that do what the executor does: check the script parses (sh -n) and,
// with harmless commands, that running it reproduces every argv word and file byte for byte.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Plan, renderScript, renderStep, renderUndo, shQuote } from "../../src/plan/plan.js";

const ODD_WORDS = ["plain", "", "two words", "it's", `"dq"`, "$HOME", "`id`", "$(id)", "*", "a;b", "a|b", "!", "~", "back\\slash", "tab\there", "new\nline", "#hash", "-n", "ü", "a=b", "'", "''"];

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-plan-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  while (dirs.length) fs.rmSync(dirs.pop()!, { recursive: true, force: true });
});

function sh(args: string[], input?: string) {
  const r = spawnSync("sh", args, { input, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("shQuote", () => {
  it("leaves safe words bare and quotes the rest", () => {
    expect(shQuote("ip")).toBe("ip");
    expect(shQuote("10.0.0.1/24")).toBe("10.0.0.1/24");
    expect(shQuote("ctnet:veth:u1/red")).toBe("ctnet:veth:u1/red");
    expect(shQuote("")).toBe("''");
    expect(shQuote("!")).toBe("'!'");
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
  });

  it("round-trips every odd word through a real sh", () => {
    const script = `printf '%s\\0' ${ODD_WORDS.map(shQuote).join(" ")}`;
    const r = sh(["-c", script]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\0").slice(0, -1)).toEqual(ODD_WORDS);
  });
});

describe("renderScript", () => {
  it("starts like a script and prints each reason as a numbered comment before its step", () => {
    const plan = new Plan("net create red")
      .cmd(["ip", "link", "add", "ctbr-red", "type", "bridge"], "bridge for network red", ["ip", "link", "del", "ctbr-red"])
      .cmd(["iptables", "-w", "-t", "filter", "-A", "CTNET-FORWARD", "-i", "ctbr-red", "!", "-o", "ctbr-red", "-j", "ACCEPT"], "containers on red reach the outside");
    const script = renderScript(plan);
    expect(script).toBe(
      [
        "#!/bin/sh",
        "# ctnet plan: net create red",
        "set -e",
        "",
        "# 1. bridge for network red",
        "ip link add ctbr-red type bridge",
        "",
        "# 2. containers on red reach the outside",
        "iptables -w -t filter -A CTNET-FORWARD -i ctbr-red '!' -o ctbr-red -j ACCEPT",
        "",
      ].join("\n"),
    );
    expect(sh(["-n"], script).code).toBe(0);
  });

  it("says when there is nothing to do", () => {
    expect(renderScript(new Plan("net prune"))).toContain("# nothing to do");
  });

  it("renders every kind of step as valid sh, whatever the words", () => {
    const dir = tmp();
    const plan = new Plan("odd");
    for (const w of ODD_WORDS) plan.cmd(["echo", w], `reason with ${w.replace(/\n/g, " ")}`, ["echo", "undo", w]);
    plan.write(path.join(dir, "has space", "hosts"), "EOF\nline 'q' $HOME\n", null, "a file whose content contains the heredoc marker");
    plan.write(path.join(dir, "gone"), null, "old\n", "remove a file");
    plan.spawn(["sleep", "it's"], "c1", path.join(dir, "log file"), "start c1's process");
    plan.kill([123, 456], "SIGTERM", "stop c1");
    const script = renderScript(plan);
    const r = sh(["-n"], script);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    for (const step of plan.steps) {
      const undo = renderUndo(step);
      if (undo && step.kind !== "spawn") expect(sh(["-n"], undo).code, undo).toBe(0);
    }
  });

  it("runs: commands get their words and files get their bytes exactly", () => {
    const dir = tmp();
    const out = path.join(dir, "args");
    const file = path.join(dir, "etc netns", "c1", "hosts");
    const content = "127.0.0.1\tlocalhost\nEOF\nEOF_\n'quoted' \"double\" $HOME `id` \\n\n";
    const plan = new Plan("round trip")
      .cmd(["sh", "-c", 'printf "%s\\0" "$@" > "$0"', out, ...ODD_WORDS], "record the words")
      .write(file, content, null, "hosts file")
      .write(path.join(dir, "no-newline"), "last line", null, "a file without a final newline");
    const r = sh(["-c", renderScript(plan)]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(fs.readFileSync(out, "utf8").split("\0").slice(0, -1)).toEqual(ODD_WORDS);
    expect(fs.readFileSync(file, "utf8")).toBe(content);
    // the script can only write whole lines: it adds the final newline the content lacked
    expect(fs.readFileSync(path.join(dir, "no-newline"), "utf8")).toBe("last line\n");
  });

  it("set -e stops at the first failing step", () => {
    const dir = tmp();
    const plan = new Plan("stops").cmd(["false"], "fails").cmd(["touch", path.join(dir, "after")], "must not run");
    expect(sh(["-c", renderScript(plan)]).code).not.toBe(0);
    expect(fs.existsSync(path.join(dir, "after"))).toBe(false);
  });
});

describe("steps and their undo", () => {
  it("undo of a write restores the previous content, or removes a file that did not exist", () => {
    const dir = tmp();
    const f = path.join(dir, "hosts");
    const plan = new Plan("w").write(f, "new\n", "old\n", "rewrite").write(path.join(dir, "fresh"), "x\n", null, "create");
    const [rewrite, create] = plan.steps;
    fs.writeFileSync(f, "new\n");
    expect(sh(["-c", renderUndo(rewrite)!]).code).toBe(0);
    expect(fs.readFileSync(f, "utf8")).toBe("old\n");
    expect(renderUndo(create)).toBe(`rm -f ${shQuote(path.join(dir, "fresh"))}`);
  });

  it("a write that changes nothing is no step at all", () => {
    expect(new Plan("same").write("/x", "a\n", "a\n", "unchanged").empty).toBe(true);
  });

  it("cmd steps carry their undo argv; kills have none", () => {
    const plan = new Plan("p").cmd(["ip", "netns", "add", "c1"], "ns", ["ip", "netns", "del", "c1"]).kill([1], "SIGKILL", "k").kill([], "SIGKILL", "nothing");
    expect(plan.steps).toHaveLength(2);
    expect(renderUndo(plan.steps[0])).toBe("ip netns del c1");
    expect(renderUndo(plan.steps[1])).toBeNull();
    expect(renderStep(plan.steps[1])).toBe("kill -KILL 1");
  });
});

describe("reasons", () => {
  it("stay comments even when they quote words with newlines", () => {
    const dir = tmp();
    const marker = path.join(dir, "escaped");
    const plan = new Plan("nl").cmd(["true"], `start c1's process: sh -c echo a\ntouch ${marker}`);
    const script = renderScript(plan);
    expect(script).toContain(`# 1. start c1's process: sh -c echo a\n#    touch ${marker}\ntrue\n`);
    expect(sh(["-c", script]).code).toBe(0);
    expect(fs.existsSync(marker)).toBe(false);
  });
});
