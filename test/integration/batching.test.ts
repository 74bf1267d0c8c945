// The executor's batching on the real kernel: a run of iptables steps over several tables goes to one
// iptables-restore with a section per table, and a failure in a later section undoes exactly the sections
// that took effect. Uses its own chains (not ctnet's names), removed afterwards.
import { afterEach, expect, it } from "vitest";
import { execute } from "../../src/plan/executor.js";
import { Plan } from "../../src/plan/plan.js";
import { sh, uniq } from "./harness.js";

const ipt = (table: string, ...args: string[]) => ["iptables", "-w", "-t", table, ...args];
const chains: Array<[string, string]> = [];

function newChain(plan: Plan, table: string): string {
  const name = uniq("ctb-t-");
  chains.push([table, name]);
  plan.cmd(ipt(table, "-N", name), `chain ${name}`, ipt(table, "-X", name));
  return name;
}

const rules = (table: string, chain: string) => {
  const r = sh(ipt(table, "-S", chain));
  return r.code === 0 ? r.stdout.trim().split("\n").slice(1) : null;
};

afterEach(() => {
  for (const [table, name] of chains.splice(0)) {
    sh(ipt(table, "-F", name));
    sh(ipt(table, "-X", name));
  }
});

it("applies filter, nat and filter sections of one batch in plan order", async () => {
  const plan = new Plan("three sections");
  const f = newChain(plan, "filter");
  plan.cmd(ipt("filter", "-A", f, "-j", "ACCEPT"), "first filter rule", ipt("filter", "-D", f, "-j", "ACCEPT"));
  const n = newChain(plan, "nat");
  plan.cmd(ipt("nat", "-A", n, "-j", "RETURN"), "a nat rule", ipt("nat", "-D", n, "-j", "RETURN"));
  plan.cmd(ipt("filter", "-A", f, "-j", "DROP"), "second filter rule", ipt("filter", "-D", f, "-j", "DROP"));
  await execute(plan);
  expect(rules("filter", f)).toEqual([`-A ${f} -j ACCEPT`, `-A ${f} -j DROP`]);
  expect(rules("nat", n)).toEqual([`-A ${n} -j RETURN`]);
});

it("a failing later section rolls back the sections that committed, and names the failing rule", async () => {
  const plan = new Plan("fails in nat");
  const f = newChain(plan, "filter");
  plan.cmd(ipt("filter", "-A", f, "-j", "ACCEPT"), "filter rule", ipt("filter", "-D", f, "-j", "ACCEPT"));
  const n = newChain(plan, "nat");
  const missing = uniq("ctb-none-");
  plan.cmd(ipt("nat", "-A", n, "-j", missing), "jump to a chain that does not exist", ipt("nat", "-D", n, "-j", missing));
  await expect(execute(plan)).rejects.toThrow(/rolled back/);
  expect(rules("filter", f)).toBeNull();
  expect(rules("nat", n)).toBeNull();
});
