// Docker's predefined `host` and `null` drivers: the host and none networks exist once, always, and
// containers join them with --net host / --net none (run modes, see containers.ts). They are in the
// registry so that `net ls`, `inspect` and `net create -d` know them by name; nothing creates another.
import { UsageError } from "../errors.js";
import type { NetworkDriver } from "./driver.js";

function predefinedDriver(name: "host" | "null"): NetworkDriver {
  const only = (): never => {
    throw new UsageError(`only one instance of "${name}" network is allowed`);
  };
  return {
    name, optionKeys: {}, checkOption: only, validate: only, create: only, remove: only, attach: only, detach: only,
    networkLinks: () => [], macPerEndpoint: false, endpointHostLink: only, checkNetwork: () => [], checkEndpoint: () => [], hostSide: () => null, defaultRoute: only,
  };
}

export const hostDriver = predefinedDriver("host");
export const nullDriver = predefinedDriver("null");
