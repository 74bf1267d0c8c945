// macvlan: each container gets a link of its own MAC on the host's NIC (the parent) and sits on the LAN
// behind it like another machine. See docs/drivers.md.
import { subLinkDriver } from "./sublink.js";

export const macvlanDriver = subLinkDriver({
  name: "macvlan",
  modeKey: "macvlan_mode",
  modes: ["bridge", "private", "vepa", "passthru"],
  modeArgs: (mode) => ["mode", mode],
  ownMac: true,
  routesViaGateway: () => true,
});
