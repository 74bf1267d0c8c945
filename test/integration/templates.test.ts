// --format Go templates on real containers and networks, in a private host: the scripts users bring from
// docker (https://docs.docker.com/engine/cli/formatting/, and the ps / network ls / inspect reference
// pages' --format sections) print what they print with docker.
import { describe, expect, it } from "vitest";
import { jsonLines } from "./harness.js";
import { useIsolatedHosts } from "./isolated.js";

const newHost = useIsolatedHosts();

describe("--format templates", () => {
  it("ps, inspect, net ls, net inspect and lab ls take docker's templates; json is one object a line", async () => {
    const h = await newHost();
    h.ok("net", "create", "--subnet", "10.253.40.0/24", "--label", "team=blue", "tpl");
    h.ok("run", "-d", "--net", "tpl", "--name", "web");
    h.ok("run", "-d", "--net", "tpl", "--name", "db", "--", "sleep", "300");
    const ids = Object.fromEntries(["web", "db"].map((n) => [n, h.state().containers[n].id.slice(0, 12)]));

    expect(h.ok("ps", "--format", "{{.Names}}").split("\n").sort()).toEqual(["", "db", "web"]);
    expect(h.ok("ps", "--format", "{{.ID}} {{.Names}} {{.Networks}}")).toContain(`${ids.db} db tpl\n`);
    expect(h.ok("ps", "--format", "table {{.ID}}\\t{{.Names}}")).toMatch(new RegExp(`^CONTAINER ID   NAMES\n(${ids.db}   db\n${ids.web}   web|${ids.web}   web\n${ids.db}   db)\n$`));
    // docker 23+: `--format json` prints one JSON object per line, not an array
    expect(jsonLines(h.ok("ps", "--format", "json")).map((r) => r.Names).sort()).toEqual(["db", "web"]);

    const ip = h.state().containers.web.endpoints[0].ip;
    expect(h.ok("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web")).toBe(`${ip}\n`);
    expect(JSON.parse(h.ok("inspect", "--format", "{{json .NetworkSettings}}", "web")).Networks.tpl.IPAddress).toBe(ip);
    expect(h.ok("inspect", "-f", "{{.Name}} {{join .Args \",\"}}", "web", "db")).toBe("/web infinity\n/db 300\n");

    expect(h.ok("net", "ls", "--format", "{{.Name}}:{{.Driver}}:{{.Labels}}")).toContain("tpl:bridge:team=blue\n");
    expect(h.ok("net", "ls", "--format", '{{if eq .Name "tpl"}}{{.Label "team"}}{{end}}').trim()).toBe("blue");
    expect(jsonLines(h.ok("net", "ls", "--format", "json")).find((r) => r.Name === "tpl")).toMatchObject({ Driver: "bridge", Labels: "team=blue" });
    expect(h.ok("net", "inspect", "-f", '{{index .Options "com.docker.network.bridge.name"}}', "tpl")).toBe(`${h.state().networks.tpl.bridge}\n`);
    expect(h.ok("net", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", "tpl").trim().split(" ").sort()).toEqual(["db", "web"]);

    expect(h.ok("lab", "ls", "--format", "{{.Name}}")).toBe("");

    // a template error is one line, exit 2, and prints nothing on stdout
    const bad = h.ctnet("ps", "--format", "{{.Nope}}");
    expect([bad.code, bad.stdout, bad.stderr]).toEqual([2, "", 'ctnet: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext\n']);
    expect(h.ctnet("inspect", "-f", "{{.Nope}}", "web").stderr).toBe('ctnet: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"\n');
    expect(h.ctnet("net", "ls", "--format", "{{nope}}")).toMatchObject({ code: 2, stdout: "", stderr: 'ctnet: template: :1: function "nope" not defined\n' });
  }, 120_000);
});
