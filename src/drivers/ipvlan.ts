// ipvlan: like macvlan, but every container shares the parent's MAC (one MAC on the switch port); in l3
// mode the parent routes between the containers and the LAN, with no gateway. See docs/drivers.md.
import { subLinkDriver } from "./sublink.js";

export const ipvlanDriver = subLinkDriver({
  name: "ipvlan",
  modeKey: "ipvlan_mode",
  modes: ["l2", "l3"],
  modeArgs: (mode) => ["mode", mode],
  ownMac: false,
  routesViaGateway: (net) => (net.options.ipvlan_mode ?? "l2") === "l2",
});
