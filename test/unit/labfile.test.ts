// Lab files parsed without touching the host: the schema, its defaults, and errors that point at the
// file, line, column and field.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as yaml from "yaml";
import { describe, expect, it } from "vitest";
import { parseLab } from "../../src/lab/labfile.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const parse = (text: string) => parseLab(text, "lab.yaml", yaml);
const error = (text: string) => {
  try {
    parse(text);
  } catch (err: any) {
    expect(err.exitCode).toBe(2);
    return err.message as string;
  }
  throw new Error("no error");
};

describe("lab files", () => {
  it("reads the issue's example with every key", () => {
    const lab = parse(`name: shop
networks:
  front: {}
  back: {subnet: 10.30.0.0/24, internal: true, options: {icc: "false"}, labels: {course: net101}}
containers:
  web:
    networks:
      front: {}
      back: {ip: 10.30.0.10, aliases: [www]}
    ports: ["8080:80"]
    expose: [443]
    command: ["sh", "-c", "exec socat TCP-LISTEN:80,fork SYSTEM:'echo hi'"]
    hostname: web
    environment: {MODE: demo}
  db:
    networks: [back]
`);
    expect(lab.name).toBe("shop");
    expect(lab.networks.map((n) => n.name)).toEqual(["front", "back"]);
    expect(lab.networks[1]).toMatchObject({ subnet: "10.30.0.0/24", internal: true, options: { icc: "false" }, labels: { course: "net101" } });
    const [web, db] = lab.containers;
    expect(web.networks).toMatchObject([{ network: "front", aliases: [] }, { network: "back", ip: "10.30.0.10", aliases: ["www"] }]);
    expect(web).toMatchObject({ mode: "bridge", ports: ["8080:80"], expose: ["443"], hostname: "web", env: ["MODE=demo"] });
    expect(web.where).toEqual({ line: 6, col: 3 });
    expect(db.networks.map((a) => a.network)).toEqual(["back"]);
  });

  it("defaults: the default network, an idle command; a string command runs through sh -c; env lists and anchors", () => {
    const lab = parse(`name: d
containers:
  a: {}
  b: {command: "echo hi", environment: ["X=1", "Y="]}
  c: {environment: {A: "1", B: two}, network_mode: "container:a"}
`);
    const [a, b, c] = lab.containers;
    expect(a).toMatchObject({ mode: "bridge", networks: [], command: [] });
    expect(b).toMatchObject({ command: ["sh", "-c", "echo hi"], env: ["X=1", "Y="] });
    expect(c).toMatchObject({ mode: "container", joins: "a", env: ["A=1", "B=two"] });
    const anchored = parse("name: d\ncontainers:\n  a: &base {command: [sleep, \"60\"]}\n  b: *base\n");
    expect(anchored.containers[1].command).toEqual(["sleep", "60"]);
  });

  it("every example lab file parses", () => {
    const files = fs.readdirSync(path.join(ROOT, "examples")).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) expect(parseLab(fs.readFileSync(path.join(ROOT, "examples", f), "utf8"), f, yaml).name).toBe(f.replace(/\.yaml$/, ""));
  });

  const cases: Array<[string, string, string]> = [
    ["unknown top key", "name: x\nservices: {}\n", "lab.yaml:2:1: services: unknown key (known: name, networks, containers)"],
    ["wrong type", "name: x\ncontainers:\n  c: {hostname: [a]}\n", "lab.yaml:3:17: containers.c.hostname: expected a string, got a list"],
    ["bool expected", "name: x\nnetworks:\n  n: {internal: yes please}\n", "lab.yaml:3:17: networks.n.internal: expected true or false, got string \"yes please\""],
    ["undeclared network in a map", "name: x\ncontainers:\n  c:\n    networks:\n      nope: {ip: 10.0.0.2}\n", "lab.yaml:5:7: containers.c.networks.nope: network \"nope\" is not declared under networks"],
    ["predefined network", "name: x\ncontainers:\n  c: {networks: [host]}\n", "lab.yaml:3:18: containers.c.networks[0]: network \"host\" is not declared under networks (use network_mode: host)"],
    ["both networks and mode", "name: x\nnetworks: {n: {}}\ncontainers:\n  c: {networks: [n], network_mode: host}\n", "lab.yaml:4:22: containers.c.network_mode: give either networks or network_mode, not both"],
    ["cycle", "name: x\ncontainers:\n  a: {network_mode: \"container:b\"}\n  b: {network_mode: \"container:a\"}\n", "lab.yaml:3:3: containers.a.network_mode: container: modes form a cycle (a -> b -> a)"],
    ["bad ip", "name: x\nnetworks: {n: {}}\ncontainers:\n  c:\n    networks:\n      n: {ip: 10.0.0.300}\n", "lab.yaml:6:15: containers.c.networks.n.ip: invalid ip \"10.0.0.300\": not an IPv4 address"],
    ["bad env", "name: x\ncontainers:\n  c: {environment: [\"no equals\"]}\n", "lab.yaml:3:21: containers.c.environment[0]: expected KEY=VALUE, got \"no equals\""],
    ["bad name", "name: \"my lab\"\n", "lab.yaml:1:7: name: invalid lab name \"my lab\""],
    ["duplicate key", "name: x\nname: y\n", "lab.yaml:2:1: malformed YAML: Map keys must be unique"],
    ["two documents", "name: x\n---\nname: y\n", "lab.yaml:2:1: malformed YAML"],
    ["gateway without subnet", "name: x\nnetworks:\n  n: {gateway: 10.1.0.1}\n", "lab.yaml:3:6: networks.n: gateway needs a subnet"],
    ["publish in host mode", "name: x\ncontainers:\n  c: {network_mode: host, ports: [\"80\"]}\n", "lab.yaml:3:27: containers.c: ports cannot be published in network_mode host"],
  ];
  for (const [what, text, message] of cases) {
    it(`points at the problem: ${what}`, () => {
      expect(error(text)).toContain(message);
    });
  }

  it("refuses deep nesting before the parser sees it", () => {
    expect(error(`name: x\ncontainers: ${"[".repeat(5000)}${"]".repeat(5000)}\n`)).toMatch(/^lab\.yaml:2:\d+: nested deeper than a lab file allows/);
    // brackets in strings and comments do not count
    expect(parse(`name: x # [[[[[[[[[[\ncontainers:\n  c: {command: ["[[[[[[[[[["]}\n`).containers[0].command).toEqual(["[[[[[[[[[["]);
  });

  it("reads a macvlan network with its parent, checks its options against its driver, and refuses an unknown driver", () => {
    const lab = parse(`name: lan
networks:
  office: {options: {parent: eno1, macvlan_mode: bridge}, driver: macvlan, subnet: 192.168.1.0/24}
  plain: {driver: bridge}
`);
    expect(lab.networks.map((n) => [n.name, n.driver, n.options])).toEqual([["office", "macvlan", { parent: "eno1", macvlan_mode: "bridge" }], ["plain", undefined, {}]]);
    expect(error("name: x\nnetworks:\n  n: {driver: macvlan, options: {icc: \"false\"}}\n")).toMatch(/networks\.n\.options.*option icc belongs to the bridge driver, not macvlan/);
    expect(error("name: x\nnetworks:\n  n: {driver: overlay2}\n")).toMatch(/networks\.n\.driver.*unknown network driver "overlay2"/);
  });
});
