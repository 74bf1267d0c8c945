// The drivers by name. Adding a driver is adding its file and a line here.
import { UsageError } from "../errors.js";
import type { Plan } from "../plan/plan.js";
import { bridgeDriver } from "./bridge.js";
import { ipvlanDriver } from "./ipvlan.js";
import { macvlanDriver } from "./macvlan.js";
import { hostDriver, nullDriver } from "./predefined.js";
import { overlayDriver } from "./overlay.js";
import type { Attachment, DriverRegistry, NetworkDriver, PlanContext } from "./driver.js";
import type { DriverName, Endpoint, NetworkRecord } from "../model.js";

const DRIVERS = {
  bridge: bridgeDriver,
  macvlan: macvlanDriver,
  ipvlan: ipvlanDriver,
  overlay: overlayDriver,
  host: hostDriver,
  null: nullDriver,
} satisfies Record<DriverName, NetworkDriver>;

/** The driver of each predefined network, as `net ls` shows it. */
export const PREDEFINED_DRIVERS = { bridge: "bridge", host: "host", none: "null" } as const satisfies Record<string, DriverName>;

export function driverNamed(name: string): NetworkDriver & { name: DriverName } {
  if (!Object.hasOwn(DRIVERS, name)) throw new UsageError(`unknown network driver ${JSON.stringify(name)}: known are ${Object.keys(DRIVERS).join(", ")}`);
  return DRIVERS[name as DriverName] as NetworkDriver & { name: DriverName };
}

export const driverOf = (net: NetworkRecord): NetworkDriver => DRIVERS[net.driver];

export const registry: DriverRegistry = { named: driverNamed, of: driverOf };

/** `-o` pairs as the driver stores them (its short keys); another driver's option is refused by name. */
export function driverOptions(driver: NetworkDriver, raw: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    const short = driver.optionKeys[key];
    if (!short) {
      const owner = Object.values(DRIVERS).find((d) => d.optionKeys[key]);
      if (owner) throw new UsageError(`option ${key} belongs to the ${owner.name} driver, not ${driver.name}`);
      const known = driver.optionsHelp ?? [...new Set(Object.values(driver.optionKeys))].join(", ");
      throw new UsageError(`unknown network option ${JSON.stringify(key)}: known are ${known}`);
    }
    out[short] = driver.checkOption(short, value) ?? value;
  }
  return out;
}

/**
 * Plugs a sandbox into its networks, each by its driver, then gives it a default route through
 * `routeVia`, the first network that has a way out (routeNetwork).
 */
export function attachEndpoints(plan: Plan, ctx: PlanContext, netns: string, attachments: Attachment[], routeVia?: NetworkRecord): void {
  const byDriver = new Map<NetworkDriver, Attachment[]>();
  for (const a of attachments) byDriver.set(ctx.drivers.of(a.net), [...(byDriver.get(ctx.drivers.of(a.net)) ?? []), a]);
  for (const [driver, some] of byDriver) driver.attach(plan, ctx, netns, some);
  const via = routeVia && attachments.find((a) => a.net === routeVia);
  if (!via) return;
  const route = ctx.drivers.of(via.net).defaultRoute(via.net, via.ep);
  plan.cmd(["ip", "-n", netns, "route", "add", "default", ...route], routeReason(via.net, via.ep, route), null);
}

/** The reason of a default route step; `route` is the words the driver gave (driver.defaultRoute). */
export function routeReason(net: NetworkRecord, ep: Endpoint, route: string[]): string {
  return route[0] === "via" ? `default route via ${net.name}'s gateway` : `default route out of ${ep.ifname} (${net.name} routes without a gateway)`;
}
