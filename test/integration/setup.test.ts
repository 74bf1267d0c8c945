// scripts/setup.sh puts ctnet on PATH: /usr/local/bin/ctnet links to the clone's bin/ctnet, so `ctnet`
// works from any directory. Each case runs setup.sh in a private mount namespace over an empty
// /usr/local/bin (a tmpfs), so the host's own /usr/local/bin is never touched.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, sh } from "./harness.js";

const LINK = "/usr/local/bin/ctnet";
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "ctnet-setup-test-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * A clone of its own to run setup.sh in, sharing this one's sources and node_modules by links (setup.sh
 * leaves a linked node_modules alone), so its build never rewrites the dist/ other tests run.
 */
const CLONE = path.join(scratch, "clone");
fs.mkdirSync(path.join(CLONE, "scripts"), { recursive: true });
for (const file of ["package.json", "package-lock.json", "build.mjs", "bin", "scripts/setup.sh"]) fs.cpSync(path.join(ROOT, file), path.join(CLONE, file), { recursive: true });
for (const dir of ["src", "node_modules"]) fs.symlinkSync(path.join(ROOT, dir), path.join(CLONE, dir));
const HERE = path.join(CLONE, "bin/ctnet");

/** A fake checkout at DIR with a bin/ctnet, its package.json naming `name`. */
function checkout(name: string): string {
  const dir = fs.mkdtempSync(path.join(scratch, `${name}-`));
  fs.mkdirSync(path.join(dir, "bin"));
  fs.writeFileSync(path.join(dir, "bin/ctnet"), "#!/bin/sh\necho old\n", { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name, version: "0.0.1" }, null, 2));
  return path.join(dir, "bin/ctnet");
}

interface Outcome { code: number; out: string; err: string; link: string; file: string; version: string }

/** Runs `prepare` then setup.sh `times` times in the private namespace; reports the last run and /usr/local/bin/ctnet. */
function setup(prepare: string, times = 1): Outcome {
  const script = [
    "set -e", "mount -t tmpfs ctnet-test /usr/local/bin", prepare, "set +e",
    ...Array.from({ length: times }, () => `${path.join(CLONE, "scripts/setup.sh")} >"${scratch}/out" 2>"${scratch}/err"; echo $? >"${scratch}/code"`),
    `readlink ${LINK} >"${scratch}/link"; cat ${LINK} >"${scratch}/file" 2>/dev/null`,
    // from another directory, through PATH alone
    `cd / && env PATH=/usr/local/bin:/usr/bin:/bin ctnet --version >"${scratch}/version" 2>&1; true`,
  ].join("\n");
  const r = sh(["unshare", "--mount", "--propagation", "private", "sh", "-c", script]);
  expect(r.code, r.stderr).toBe(0);
  const read = (f: string) => fs.readFileSync(path.join(scratch, f), "utf8").trim();
  return { code: Number(read("code")), out: read("out"), err: read("err"), link: read("link"), file: read("file"), version: read("version") };
}

const VERSION = JSON.parse(fs.readFileSync(path.join(CLONE, "package.json"), "utf8")).version;

describe("setup.sh and PATH", () => {
  it("links bin/ctnet into /usr/local/bin, so `ctnet --version` works from /; a second run changes nothing", () => {
    const first = setup("true");
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain(`ctnet on PATH: ${LINK} links to ${HERE}`);
    expect(first.link).toBe(HERE);
    expect(first.version).toBe(VERSION);
    const again = setup("true", 2);
    expect(again.code, again.err).toBe(0);
    expect(again.link).toBe(HERE);
    expect(again.out).not.toContain("ctnet on PATH");
    expect(again.err).toBe("");
  }, 180_000);

  it("moves a link to another ctnet's bin (another clone, or one that is gone) to this clone", () => {
    const other = checkout("ctnet");
    const moved = setup(`ln -s ${other} ${LINK}`);
    expect(moved.code, moved.err).toBe(0);
    expect(moved.out).toContain(`(it linked to ${other})`);
    expect(moved.link).toBe(HERE);
    expect(moved.version).toBe(VERSION);
    const gone = setup(`ln -s ${scratch}/deleted-clone/bin/ctnet ${LINK}`);
    expect(gone.link).toBe(HERE);
    expect(fs.readFileSync(other, "utf8")).toBe("#!/bin/sh\necho old\n");
  }, 180_000);

  it("leaves a file, or a link to anything but a ctnet bin, as it was, and says so", () => {
    const theirs = path.join(scratch, "theirs");
    fs.writeFileSync(theirs, "#!/bin/sh\necho theirs\n", { mode: 0o755 });
    const cases = [
      { prepare: `printf '#!/bin/sh\\necho mine\\n' >${LINK}; chmod +x ${LINK}`, link: "", file: "#!/bin/sh\necho mine", version: "mine" },
      { prepare: `ln -s ${theirs} ${LINK}`, link: theirs, version: "theirs" },
      { prepare: `ln -s ${checkout("not-ctnet")} ${LINK}`, link: "not-ctnet", version: "old" },
    ];
    for (const c of cases) {
      const r = setup(c.prepare);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toBe(`setup: ${LINK} is not a link to a ctnet bin: left alone; run ${HERE}, or put ${path.dirname(HERE)} on PATH`);
      if (c.link) expect(r.link).toContain(c.link);
      else expect(r.link).toBe("");
      if (c.file) expect(r.file).toBe(c.file);
      expect(r.version).toBe(c.version);
    }
  }, 240_000);
});
