// The command line: a thin layer that parses flags and hands them to the planners. Every mutating
// command goes through core.mutate (plan, then --dry-run or execute).
import fs from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { exitCodeOf, printError } from "../errors.js";
import { findEach, mutate, mutateEach, openStore, readState, requireRoot, type GlobalOptions } from "../plan/core.js";
import { resolveStateDir } from "../store/store.js";
import type { State } from "../model.js";
import { printJson, printJsonLines, printTable, printTemplated, printInspectTemplated, checkFormat } from "../views/output.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

const VERBOSE_HELP = "echo each command as it runs, like set -x";

/** Adds the options every mutating command shares; `run` keeps -v for Docker's --volume. */
function mutating(cmd: Command, verboseFlags = "-v, --verbose"): Command {
  return cmd
    .option("--dry-run", "print the plan as a shell script and change nothing")
    .option(verboseFlags, VERBOSE_HELP)
    // before the action reads anything (a joined host's commands read the state and the store first)
    .hook("preAction", (_cmd, action) => {
      if (!globals(action).dryRun) requireRoot();
    });
}

/** Docker flags `run` takes only to refuse them with what ctnet does instead (src/runflags.ts). */
const refusedRunFlag = (flags: string) => new Option(flags).hideHelp();

/** Column titles of `--format 'table …'`, docker's where docker has the field. */
const PS_HEADERS = {
  ID: "CONTAINER ID", Names: "NAMES", Image: "IMAGE", Command: "COMMAND", CreatedAt: "CREATED AT", RunningFor: "CREATED",
  Ports: "PORTS", State: "STATE", Status: "STATUS", Networks: "NETWORKS", Labels: "LABELS", Lab: "LAB",
};
const NET_HEADERS = {
  ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE", IPv6: "IPV6", Internal: "INTERNAL", Labels: "LABELS",
  CreatedAt: "CREATED AT", Subnet: "SUBNET", Containers: "CONTAINERS", Lab: "LAB",
};

export function buildProgram(): Command {
  const program = new Command("ctnet")
    .description("Docker's container networking with plain Linux tools; every change is an ordered shell plan")
    .version("0.1.0")
    .option("--state-dir <dir>", "state directory (default $CTNET_STATE_DIR or /var/lib/ctnet)")
    // before the command, so that `ctnet -v run …` echoes where `run -v` is Docker's --volume
    .option("-v, --verbose", VERBOSE_HELP)
    .enablePositionalOptions()
    .showSuggestionAfterError(false)
    .exitOverride();

  const net = program.command("net").alias("network").description("manage networks");

  mutating(net.command("create").description("create a network (bridge, macvlan, ipvlan; overlay on a host that joined a cluster)").argument("<name>"))
    .option("-d, --driver <driver>", "network driver: bridge, macvlan, ipvlan, overlay (docs/drivers.md, docs/overlay.md)", "bridge")
    .option("--subnet <cidr>", "subnet, e.g. 10.10.0.0/24 (default: next free in the address pools, 172.18-31.0.0/16)", collect)
    .option("--gateway <ip>", "gateway address (default: first host address)", collect)
    .option("--ip-range <cidr>", "allocate container addresses from this sub-range", collect)
    .option("--aux-address <name=ip>", "an address of the subnet never given to a container (repeatable)", collect)
    .option("--internal", "no traffic in or out of the network")
    .option("-o, --opt <key=value>", "driver option: bridge: Docker's com.docker.network.bridge.{name,enable_icc,enable_ip_masquerade,host_binding_ipv4}, com.docker.network.driver.mtu, or icc, masquerade, mtu; macvlan: parent, macvlan_mode, mtu; ipvlan: parent, ipvlan_mode, mtu (repeatable)", collect)
    .option("--label <key=value>", "label (repeatable)", collect)
    .option("--attachable", "accepted: any container may join a ctnet network")
    .addOption(new Option("--config-only").hideHelp())
    .addOption(new Option("--config-from <network>").hideHelp())
    .addOption(new Option("--scope <scope>").hideHelp())
    .addOption(new Option("--ingress").hideHelp())
    .action(async (name, opts, cmd) => {
      if (opts.driver === "overlay") {
        const { createOverlayNetwork } = await import("../cluster/overlayrun.js");
        const id = await createOverlayNetwork(globals(cmd), readState(globals(cmd)), name, opts);
        if (id) console.log(id);
        return;
      }
      const { planNetCreate } = await import("../commands/networks.js");
      await mutate(globals(cmd), (draft) => ({ plan: planNetCreate(draft, name, opts) }));
      if (!opts.dryRun) console.log(readState(globals(cmd)).networks[name].id);
    });

  net.command("ls").alias("list").description("list networks")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table, json (one object a line) or a Go template, e.g. '{{.Name}}' or 'table {{.ID}}\\t{{.Name}}'")
    .option("--lab <name>", "only networks of this lab (see up)")
    .option("-f, --filter <key=value>", "only networks matching: name, id, driver, label, scope, type=custom|builtin, dangling=true|false (repeatable, as docker's)", collect)
    .action(async (opts, cmd) => {
      const fmt = checkFormat(opts.format);
      const { listNetworks } = await import("../commands/networks.js");
      const { filterNetworks, parseFilters, NET_LS_FILTERS } = await import("../views/filters.js");
      const filters = parseFilters(opts.filter, NET_LS_FILTERS);
      const state = await withClusterNetworks(readState(globals(cmd)));
      const rows = filterNetworks(state, listNetworks(state), filters).filter((r) => opts.lab === undefined || r.Lab === opts.lab);
      if (opts.quiet) return rows.forEach((r) => console.log(r.ID.slice(0, 12)));
      if (fmt === "json") return printJsonLines(rows);
      if (fmt !== "table") return printTemplated(fmt.template, rows, "*formatter.networkContext", NET_HEADERS, (r) => state.networks[r.Name]?.labels ?? {});
      await printTable(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], rows.map((r) => [r.ID.slice(0, 12), r.Name, r.Driver, r.Scope]));
    });

  net.command("inspect").description("show networks as JSON (docker network inspect)").argument("<name...>")
    .option("-f, --format <format>", "json, or a Go template run over each network's JSON, e.g. '{{.IPAM.Config}}'")
    .action(async (names: string[], opts, cmd) => {
      const { inspectNetwork } = await import("../commands/networks.js");
      const state = await withClusterNetworks(readState(globals(cmd)));
      const found = await findEach(names, (n) => inspectNetwork(state, n));
      if (found.length === 0) return;
      if (opts.format !== undefined && opts.format !== "json") return printInspectTemplated(opts.format, found);
      printJson(found);
    });

  mutating(net.command("rm").alias("remove").description("remove networks").argument("<name...>"))
    .action(async (names: string[], opts, cmd) => {
      const { planNetRm } = await import("../commands/networks.js");
      const g = globals(cmd);
      const state = readState(g);
      const local = state.cluster ? await (await import("../cluster/overlayrun.js")).removeOverlayNetworks(g, state, names, (n) => console.log(n)) : names;
      if (local.length) await mutateEach(g, local, planNetRm, (n) => console.log(n));
    });

  mutating(net.command("prune").description("remove all networks without containers"))
    .option("--filter <key=value>", "only networks matching: label=K[=V], label!=K[=V], until=TIME (repeatable, as docker's)", collect)
    .action(async (opts, cmd) => {
      const { planNetPrune } = await import("../commands/networks.js");
      const { parseFilters, pruneMatcher, NET_PRUNE_FILTERS } = await import("../views/filters.js");
      const selected = pruneMatcher(parseFilters(opts.filter, NET_PRUNE_FILTERS));
      const removed = await mutate(globals(cmd), (draft) => {
        const { plan, removed } = planNetPrune(draft, selected);
        return { plan, commit: () => removed };
      });
      removed?.forEach((n) => console.log(n));
    });

  mutating(net.command("connect").description("connect a container to a network").argument("<network>").argument("<container>"))
    .option("--ip <ip>", "address on the network")
    .option("--alias <name>", "network-scoped alias (repeatable)", collect)
    .action(async (network, container, opts, cmd) => {
      const { planConnect } = await import("../commands/networks.js");
      await readClusterIfJoined(globals(cmd));
      await mutate(globals(cmd), (draft) => ({ plan: planConnect(draft, network, container, { ip: opts.ip, aliases: opts.alias }) }));
    });

  mutating(net.command("disconnect").description("disconnect a container from a network").argument("<network>").argument("<container>"))
    .option("-f, --force", "accepted: disconnecting never needs forcing in ctnet")
    .action(async (network, container, _opts, cmd) => {
      const { planDisconnect } = await import("../commands/networks.js");
      await readClusterIfJoined(globals(cmd));
      await mutate(globals(cmd), (draft) => ({ plan: planDisconnect(draft, network, container) }));
    });

  addContainerCommands(program, false);
  // Docker's management group: `ctnet container run|ls|inspect|rm …` as seeds 002 and 003 type them
  addContainerCommands(program.command("container").description("manage containers (the same commands as at the top level; ls is ps)"), true);

  // ---- run -d --rm: the watcher a run plan starts; not for people (src/autoremove.ts) ---------------
  program.command("autoremove", { hidden: true }).description("wait for a container's process to end, then remove it").argument("<id>")
    .action(async (id: string, _opts, cmd) => {
      const { watchAndRemove } = await import("../commands/autoremove.js");
      await watchAndRemove(globals(cmd), id);
    });

  // ---- ports (issue 3): docker port, plus publishing on a running container -------------------------

  const port = program.command("port").description("list a container's published ports (docker port), or publish/unpublish")
    .argument("<container>").argument("[port]", "PORT[/proto]: print only its host addresses")
    .action(async (name: string, portFilter: string | undefined, _opts, cmd) => {
      const { portLines } = await import("../firewall/ports.js");
      const { findContainer } = await import("../commands/networks.js");
      portLines(findContainer(readState(globals(cmd)), name), portFilter).forEach((l) => console.log(l));
    });

  mutating(port.command("publish").description("publish ports of an existing container").argument("<container>").argument("<spec...>", "[HOSTIP:][HOSTPORT[-END]:]PORT[-END][/tcp|/udp]"))
    .action(async (name: string, specs: string[], opts, cmd) => {
      const { planPublish, portLines } = await import("../firewall/ports.js");
      const { findContainer, liveContext } = await import("../commands/networks.js");
      const g = globals(cmd);
      await mutate(g, (draft) => ({ plan: planPublish(draft, findContainer(draft, name), specs, liveContext()) }));
      if (!opts.dryRun) portLines(findContainer(readState(g), name)).forEach((l) => console.log(l));
    });

  mutating(port.command("unpublish").description("remove published ports of a container").argument("<container>").argument("<spec...>", "a -p spec, or PORT[-END][/proto] for all its mappings"))
    .action(async (name: string, specs: string[], _opts, cmd) => {
      const { planUnpublish } = await import("../firewall/ports.js");
      const { findContainer, liveContext } = await import("../commands/networks.js");
      await mutate(globals(cmd), (draft) => ({ plan: planUnpublish(draft, findContainer(draft, name), specs, liveContext()) }));
    });

  // ---- labs (issue 4): whole topologies from a YAML file, the live picture, reachability ----------

  mutating(program.command("up").description("create or converge a lab from a lab file (one plan: all or nothing)"))
    .option("-f, --file <file>", "lab file", "ctnet.yaml")
    .action(async (opts, cmd) => {
      const { upCommand } = await import("../lab/lab.js");
      await upCommand(globals(cmd), { file: opts.file });
    });

  mutating(program.command("down").description("remove a lab's containers and networks, and nothing else"))
    .option("-f, --file <file>", "lab file naming the lab (default ./ctnet.yaml)")
    .option("--lab <name>", "the lab to remove, instead of reading a file")
    .action(async (opts, cmd) => {
      const { downCommand } = await import("../lab/lab.js");
      await downCommand(globals(cmd), { file: opts.lab ? opts.file : opts.file ?? "ctnet.yaml", lab: opts.lab });
    });

  program.command("lab").description("labs made with up").command("ls").alias("list").description("list labs")
    .option("-q, --quiet", "only names")
    .option("--format <format>", "table, json (an array, as docker compose ls) or a Go template, e.g. '{{.Name}}'")
    .action(async (opts, cmd) => {
      const fmt = checkFormat(opts.format);
      const { listLabs } = await import("../lab/lab.js");
      const rows = listLabs(readState(globals(cmd)));
      if (opts.quiet) return rows.forEach((r) => console.log(r.Name));
      if (fmt === "json") return printJson(rows);
      if (fmt !== "table") return printTemplated(fmt.template, rows, "*formatter.LabContext", { Name: "NAME", Networks: "NETWORKS", Containers: "CONTAINERS", Running: "RUNNING" });
      await printTable(["NAME", "NETWORKS", "CONTAINERS", "RUNNING"], rows.map((r) => [r.Name, String(r.Networks), String(r.Containers), String(r.Running)]));
    });

  program.command("graph").description("draw the live topology read from the kernel: bridges, veth pairs, namespaces, published ports")
    .option("--format <format>", "text, dot (Graphviz), svg, png or json", "text")
    .option("--lab <name>", "only this lab's objects")
    .action(async (opts, cmd) => {
      const { graphCommand } = await import("../commands/graph.js");
      await graphCommand(readState(globals(cmd)), opts);
    });

  program.command("trace").description("explain whether container FROM can reach TO (a container or an address) and why, then probe for real")
    .argument("<from>", "container the traffic starts in")
    .argument("<to>", "container name or IPv4 address")
    .argument("[port]", "TCP port (probed with nc -z); without it, ping")
    .option("--format <format>", "text or json", "text")
    .option("--no-probe", "explain only, send nothing")
    .action(async (from: string, to: string, port: string | undefined, opts, cmd) => {
      const { traceCommand } = await import("../commands/trace.js");
      await traceCommand(readState(globals(cmd)), from, to, port, opts);
    });

  // ---- clusters (issue 17): overlay networks across hosts, etcd as the shared store ----------------

  const cluster = program.command("cluster").description("join this host to a cluster of ctnet hosts sharing an etcd store (overlay networks)");

  cluster.command("join").description("join the cluster whose store is at --store; starts this host's agent")
    .requiredOption("--store <url>", "etcd://HOST:PORT[,HOST:PORT…]")
    .requiredOption("--advertise <ip>", "this host's address other hosts reach its VXLAN endpoint (VTEP) at")
    .option("--hostname <name>", "this host's name in the cluster (default: its hostname)")
    .option("--ttl <seconds>", "lifetime of the host's lease: a host silent this long counts as dead (2..30)", "15")
    .action(async (opts, cmd) => {
      requireRoot();
      const { joinCluster } = await import("../cluster/cluster.js");
      await joinCluster(globals(cmd), opts);
    });

  cluster.command("leave").description("leave the cluster; stops this host's agent")
    .option("-f, --force", "remove this host's containers on overlay networks first")
    .action(async (opts, cmd) => {
      requireRoot();
      const { leaveCluster } = await import("../cluster/overlayrun.js");
      await leaveCluster(globals(cmd), !!opts.force);
    });

  cluster.command("ls").alias("list").description("list the cluster's hosts (docker node ls)")
    .option("--format <format>", "table, json (one object a line) or a Go template, e.g. '{{.Hostname}}'")
    .action(async (opts, cmd) => {
      const fmt = checkFormat(opts.format);
      const { listHosts } = await import("../cluster/cluster.js");
      const rows = await listHosts(globals(cmd));
      if (fmt === "json") return printJsonLines(rows);
      if (fmt !== "table") return printTemplated(fmt.template, rows, "*formatter.NodeContext", { Hostname: "HOSTNAME", Vtep: "VTEP", Status: "STATUS", Containers: "CONTAINERS" });
      await printTable(["HOSTNAME", "VTEP", "STATUS", "CONTAINERS"], rows.map((r) => [r.Self ? `${r.Hostname} *` : r.Hostname, r.Vtep, r.Status, String(r.Containers)]));
    });

  cluster.command("prune").description("forget dead hosts: their address and name claims released, their membership removed (refused for a live host)")
    .argument("<host...>")
    .action(async (hosts: string[], _opts, cmd) => {
      if (!globals(cmd).dryRun) requireRoot();
      const { pruneHosts } = await import("../cluster/cluster.js");
      await pruneHosts(globals(cmd), hosts, (h) => console.log(h));
    });

  program.command("agent").description("this host's cluster agent in the foreground (cluster join starts it in the background; for systemd see docs/overlay.md)")
    .action(async (_opts, cmd) => {
      const { runAgent } = await import("../cluster/agent.js");
      await runAgent(globals(cmd));
    });

  // ---- robustness (issue 5): drift between state and kernel, and a clean slate ---------------------

  mutating(program.command("doctor").description("compare ctnet's state with the kernel and list every difference (exit 1 if any)"))
    .option("--fix", "repair: release containers whose namespace is gone, adopt running containers the state lacks, recreate what is missing, remove ctnet-marked leftovers")
    .option("--remove-orphans", "with --fix: kill and remove running containers the state lacks instead of adopting them")
    .action(async (opts, cmd) => {
      const { doctorCommand } = await import("../commands/doctor.js");
      process.exitCode = await doctorCommand(globals(cmd), { fix: !!opts.fix, removeOrphans: !!opts.removeOrphans });
    });

  mutating(program.command("reset").description("remove everything ctnet made on this host, and its state (asks first on a terminal)"))
    .option("-y, --yes", "do not ask")
    .action(async (opts, cmd) => {
      const { resetCommand } = await import("../commands/reset.js");
      await resetCommand(globals(cmd), { yes: !!opts.yes });
    });

  return program;
}

/** --time/-t of stop and restart: Docker's seconds before SIGKILL. */
function parseSeconds(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("seconds must be a whole number");
  return Number(value);
}

/**
 * The container commands, at the top level (`ctnet ps`) and in Docker's `container` group, where ps is
 * `ls` (`container ps` and `container list` too).
 */
function addContainerCommands(parent: Command, group: boolean): void {
  /** `run` without -d, and create: the same flags */
  const runLike = (cmd: Command) => cmd
    .passThroughOptions()
    // -h is Docker's --hostname here: help is --help alone
    .helpOption("--help", "display help for command")
    .option("-d, --detach", "run in the background and print the container id")
    .option("-i, --interactive", "keep stdin open")
    .option("-t, --tty", "use the terminal")
    .option("--rm", "remove the container when its process exits")
    .option("--name <name>", "container name (also its namespace, and its hostname when it is a valid one; else the short id)")
    .option("-h, --hostname <name>", "hostname inside the container")
    .addOption(new Option("--net, --network <mode>", "bridge (default) | host | none | container:NAME | NETWORK | name=NETWORK,ip=IP,alias=NAME,mac-address=MAC; repeat for more user networks").argParser(collect))
    .option("--ip <ip>", "address on the first network (a user network)")
    .addOption(new Option("--net-alias, --network-alias <name>", "extra name on the first network (a user network; repeatable)").argParser(collect))
    .option("--mac-address <mac>", "MAC address of the first network's interface")
    .option("--restart <policy>", "only no: ctnet has no daemon to restart containers")
    .option("--privileged", "accepted: a container's process already has the privileges of the user running ctnet")
    .addOption(refusedRunFlag("-v, --volume <spec>"))
    .addOption(refusedRunFlag("--mount <spec>"))
    .addOption(refusedRunFlag("--cap-add <cap>"))
    .addOption(refusedRunFlag("--cap-drop <cap>"))
    .addOption(refusedRunFlag("--sysctl <key=value>"))
    .option("--dns <ip>", "DNS server for outside names (repeatable); on a user network ctnet's DNS server forwards to it", collect)
    .option("--dns-search <domain>", "DNS search domain (repeatable)", collect)
    .option("--dns-option <option>", "resolv.conf option, e.g. ndots:2 (repeatable)", collect)
    .option("--add-host <host:ip>", "a line in the container's /etc/hosts; host-gateway is the host's address on its network (repeatable)", collect)
    .option("--link <name[:alias]>", "legacy link: the running container NAME resolves as NAME and ALIAS in this one (repeatable)", collect)
    .option("-e, --env <key=value>", "environment variable (repeatable)", collect)
    .option("-p, --publish <spec>", "publish [HOSTIP:][HOSTPORT[-END]:]PORT[-END][/tcp|/udp] (repeatable)", collect)
    .option("-P, --publish-all", "publish every exposed port on a free host port")
    .option("--expose <port>", "expose PORT[-END][/tcp|/udp] for -P (repeatable)", collect)
;

  const runAction = (create: boolean) => async (command: string[], opts: any, cmd: Command) => {
    const { refuseDockerOnlyFlags, refuseImageName } = await import("./runflags.js");
    refuseDockerOnlyFlags(opts);
    refuseImageName(command, process.argv.slice(2));
    const { runContainer } = await import("../commands/run.js");
    const g = globals(cmd);
    const o = { ...opts, net: opts.network, command, create };
    const state = readState(g);
    // an overlay network's address and name are claimed in the cluster's store by the plan (docs/overlay.md)
    process.exitCode = state.cluster ? await (await import("../cluster/overlayrun.js")).runOnCluster(g, state, o, () => runContainer(g, o)) : await runContainer(g, o);
  };

  runLike(mutating(parent.command("run").description("run a command in a new container").argument("[command...]", "command and arguments (default: an idle process; a shell with -it)"), "--verbose"))
    .action(runAction(false));

  runLike(mutating(parent.command("create").description("create a container without starting it (start runs it, detached); prints its id").argument("[command...]", "command and arguments (default: an idle process)"), "--verbose"))
    .action(runAction(true));

  mutating(parent.command("start").description("start stopped or created containers, detached: their networks joined again (the same address where it was given with --ip)").argument("<name...>"))
    .action(async (names: string[], _opts, cmd) => {
      const { planStart } = await import("../commands/lifecycle.js");
      const g = globals(cmd);
      await readClusterIfJoined(g);
      await mutateEach(g, names, (draft, some) => planStart(draft, openStore(g).dir, some), (n) => console.log(n));
    });

  mutating(parent.command("stop").description("stop containers (SIGTERM, then SIGKILL after the timeout) and release their addresses: their names stop resolving").argument("<name...>"))
    .addOption(new Option("-t, --time <seconds>", "seconds to wait before SIGKILL").default(10).argParser(parseSeconds))
    .action(async (names: string[], opts, cmd) => {
      const { planStop } = await import("../commands/lifecycle.js");
      const g = globals(cmd);
      await readClusterIfJoined(g);
      await mutateEach(g, names, (draft, some) => planStop(draft, openStore(g).dir, some, opts.time), (n) => console.log(n));
    });

  mutating(parent.command("restart").description("stop (if running), then start containers").argument("<name...>"))
    .addOption(new Option("-t, --time <seconds>", "seconds to wait before SIGKILL").default(10).argParser(parseSeconds))
    .action(async (names: string[], opts, cmd) => {
      const { planRestart } = await import("../commands/lifecycle.js");
      const g = globals(cmd);
      await readClusterIfJoined(g);
      await mutateEach(g, names, (draft, some) => planRestart(draft, openStore(g).dir, some, opts.time), (n) => console.log(n));
    });

  mutating(parent.command("kill").description("send a signal to containers' commands; SIGKILL (the default) stops them as stop does").argument("<name...>"))
    .option("-s, --signal <signal>", "signal: a name (KILL, SIGHUP) or a number", "KILL")
    .action(async (names: string[], opts, cmd) => {
      const { planKill, parseSignal } = await import("../commands/lifecycle.js");
      const g = globals(cmd);
      const signal = parseSignal(opts.signal);
      await mutateEach(g, names, (draft, some) => planKill(draft, openStore(g).dir, some, signal), (n) => console.log(n));
    });

  mutating(parent.command("rename").description("rename a container: its names on every network change; its hostname stays").argument("<container>").argument("<new-name>"))
    .action(async (name: string, newName: string, _opts, cmd) => {
      const { planRename } = await import("../commands/lifecycle.js");
      const g = globals(cmd);
      await mutate(g, (draft) => ({ plan: planRename(draft, openStore(g).dir, name, newName) }));
    });

  mutating(parent.command("pause").description("freeze every process of containers (cgroup v1 freezer)").argument("<name...>"))
    .action(async (names: string[], _opts, cmd) => {
      const { planPause } = await import("../commands/lifecycle.js");
      await mutateEach(globals(cmd), names, planPause, (n) => console.log(n));
    });

  mutating(parent.command("unpause").description("thaw paused containers").argument("<name...>"))
    .action(async (names: string[], _opts, cmd) => {
      const { planUnpause } = await import("../commands/lifecycle.js");
      await mutateEach(globals(cmd), names, planUnpause, (n) => console.log(n));
    });

  parent.command("wait").description("wait until containers stop, then print each exit code").argument("<name...>")
    .action(async (names: string[], _opts, cmd) => {
      const { waitExit } = await import("../commands/lifecycle.js");
      const { findContainer } = await import("../commands/networks.js");
      const store = openStore(globals(cmd));
      const state = store.read();
      const found = await findEach(names, (n) => findContainer(state, n));
      for (const c of found) console.log(await waitExit(store.dir, c));
    });

  mutating(parent.command("rm").description("remove containers").argument("<name...>"))
    .option("-f, --force", "kill running containers first")
    .action(async (names: string[], opts, cmd) => {
      const { planRm } = await import("../commands/containers.js");
      const g = globals(cmd);
      const state = readState(g);
      // the plan's last step releases their overlay claims: the store must be reachable before its first
      if (state.cluster && !opts.dryRun) await (await import("../cluster/overlayrun.js")).checkStoreForRemoval(state, names);
      await mutateEach(g, names, (draft, some) => planRm(draft, openStore(g).dir, some, !!opts.force), (n) => console.log(n));
    });

  if (group) {
    // the listing of `ctnet port`; publish/unpublish stay at the top level
    parent.command("port").description("list a container's published ports (docker container port)")
      .argument("<container>").argument("[port]", "PORT[/proto]: print only its host addresses")
      .action(async (name: string, portFilter: string | undefined, _opts, cmd) => {
        const { portLines } = await import("../firewall/ports.js");
        const { findContainer } = await import("../commands/networks.js");
        portLines(findContainer(readState(globals(cmd)), name), portFilter).forEach((l) => console.log(l));
      });

    mutating(parent.command("prune").description("remove every stopped container"))
      .action(async (_opts, cmd) => {
        const { planRm } = await import("../commands/containers.js");
        const { isRunning } = await import("../commands/process.js");
        const { Plan } = await import("../plan/plan.js");
        const g = globals(cmd);
        const removed = await mutate(g, (draft) => {
          const stopped = Object.values(draft.containers).filter((c) => !isRunning(c)).map((c) => c.name);
          return { plan: stopped.length ? planRm(draft, openStore(g).dir, stopped, false) : new Plan("container prune"), commit: () => stopped };
        });
        removed?.forEach((n) => console.log(n));
      });
  }

  parent.command("exec").description("run a command inside a running container").argument("<name>").argument("<command...>")
    .passThroughOptions()
    .option("-i, --interactive", "keep stdin open")
    .option("-t, --tty", "use the terminal")
    .option("-e, --env <key=value>", "environment variable (repeatable)", collect)
    .action(async (name: string, command: string[], opts, cmd) => {
      const { execInContainer } = await import("../commands/run.js");
      process.exitCode = await execInContainer(globals(cmd), name, command, opts);
    });

  const ps = group ? parent.command("ls").aliases(["ps", "list"]) : parent.command("ps");
  ps.description("list containers")
    .option("-a, --all", "include stopped containers")
    .option("-q, --quiet", "only ids")
    .option("--format <format>", "table, json (one object a line) or a Go template, e.g. '{{.Names}}', '{{.Networks}}' or 'table {{.ID}}\\t{{.Names}}'")
    .option("--lab <name>", "only containers of this lab (see up)")
    .option("-f, --filter <key=value>", "only containers matching: id, name, label, network, status, publish, expose, before, since (repeatable, as docker's)", collect)
    .action(async (opts, cmd) => {
      const fmt = checkFormat(opts.format);
      const { isRunning, lastExit } = await import("../commands/process.js");
      const { listContainers, psTableRow, PS_COLUMNS } = await import("../views/containers.js");
      const { parseFilters, PS_FILTERS } = await import("../views/filters.js");
      const filters = parseFilters(opts.filter, PS_FILTERS);
      const store = openStore(globals(cmd));
      const rows = listContainers(store.read(), !!opts.all, filters, (c, running) => lastExit(store.dir, c, running), isRunning)
        .filter((r) => opts.lab === undefined || r.Lab === opts.lab);
      if (opts.quiet) return rows.forEach((r) => console.log(r.ID));
      if (fmt === "json") return printJsonLines(rows);
      if (fmt !== "table") return printTemplated(fmt.template, rows, "*formatter.ContainerContext", PS_HEADERS, (r): Record<string, string> => (r.Lab ? { "ctnet.lab": r.Lab } : {}));
      await printTable(PS_COLUMNS, rows.map(psTableRow));
    });

  parent.command("inspect").description("show containers as JSON (docker inspect)").argument("<name...>")
    .option("-f, --format <format>", "json, or a Go template run over each container's JSON, e.g. '{{.NetworkSettings.Networks}}'")
    .action(async (names: string[], opts, cmd) => {
      const { inspectFacts } = await import("../commands/lifecycle.js");
      const { inspectContainer } = await import("../views/containers.js");
      const { findContainer } = await import("../commands/networks.js");
      const store = openStore(globals(cmd));
      const state = store.read();
      const found = await findEach(names, (n) => {
        const c = findContainer(state, n);
        return inspectContainer(state, c, inspectFacts(store.dir, c));
      });
      if (found.length === 0) return;
      if (opts.format !== undefined && opts.format !== "json") return printInspectTemplated(opts.format, found);
      printJson(found);
    });

  parent.command("logs").description("print a container's output").argument("<name>")
    .option("-f, --follow", "keep printing what it writes until it stops")
    .option("-n, --tail <lines>", "only the last lines (a number, or all)", "all")
    .option("--since <time>", "refused: ctnet's logs have no time per line (there is no daemon to stamp them)")
    .option("-t, --timestamps", "refused, for the same reason")
    .action(async (name: string, opts, cmd) => {
      const { printLogs } = await import("../commands/run.js");
      await printLogs(globals(cmd), name, opts);
    });
}

/** --state-dir may stand anywhere before "--" (scripts put it after the subcommand); the rest is commander's. */
function hoistStateDir(argv: string[]): string[] {
  const end = argv.indexOf("--") === -1 ? argv.length : argv.indexOf("--");
  const out = argv.slice(0, 2);
  const hoisted: string[] = [];
  for (let i = 2; i < argv.length; i++) {
    if (i < end && argv[i] === "--state-dir" && i + 1 < end) hoisted.push(argv[i], argv[++i]);
    else if (i < end && argv[i].startsWith("--state-dir=")) hoisted.push(argv[i]);
    else out.push(argv[i]);
  }
  return [...out.slice(0, 2), ...hoisted, ...out.slice(2)];
}

/** On a joined host, the store's overlay networks and claims, for commands that may join or leave them (claims.ts). */
async function readClusterIfJoined(g: GlobalOptions): Promise<void> {
  const state = readState(g);
  if (state.cluster) await (await import("../cluster/overlayrun.js")).readCluster(g, state);
}

/** A joined host's view of the networks: its own, and every overlay network of the cluster. */
async function withClusterNetworks(state: State): Promise<State> {
  if (!state.cluster) return state;
  const { clusterNetworks } = await import("../cluster/overlayrun.js");
  try {
    for (const net of await clusterNetworks(state)) state.networks[net.name] ??= net;
  } catch (err: any) {
    process.stderr.write(`ctnet: warning: ${err.message}: overlay networks without containers here are not listed\n`);
  }
  return state;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(hoistStateDir(argv));
    // a joined host's agent that died is started again by whatever command comes next (not by itself)
    const stateDir = resolveStateDir(program.opts().stateDir);
    if (program.args[0] !== "agent" && fs.existsSync(`${stateDir}/agent.pid`)) await (await import("../cluster/cluster.js")).reviveAgent(stateDir);
  } catch (err: any) {
    if (err instanceof CommanderError) {
      // help and version are not errors; commander already printed its one-line message
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    await printError(err);
    process.exitCode = exitCodeOf(err);
  }
}
