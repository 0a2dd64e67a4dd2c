/**
 * Command-line entry: `kagemusha ha | mn | status | ctl`.
 *
 * Exit codes: 0 success; 1 runtime failure; 2 usage or configuration error
 * (the message names the flag or config key at fault).
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import { ConfigError, loadHaConfig, loadMnConfig } from "../config/load.ts";
import { controlRequest } from "../control/client.ts";
import { LOG_LEVELS, setupLogging } from "../log.ts";
import { formatStatus } from "./status.ts";
import { ifNameToIndex } from "../../ffi/structs.ts";

/**
 * A configuration naming an interface that does not exist is a configuration error (exit 2,
 * flag named), caught before the daemon creates anything.
 */
function requireInterface(name: string): void {
  try {
    ifNameToIndex(name);
  } catch (e) {
    throw new ConfigError([
      `--interface: no network interface named "${name}" (${(e as Error).message})`,
    ]);
  }
}

/** Exit code for usage and configuration errors. */
export const EXIT_USAGE = 2;
/** Exit code for failures at run time (OS errors, unreachable control socket). */
export const EXIT_FAILURE = 1;

const collect = (v: string, prev: string[]) => [...prev, v];

function common(cmd: Command, role: "ha" | "mn"): Command {
  return cmd
    .option("--control <path>", `control socket (default /run/kagemusha/${role}.sock)`)
    .option("--state-dir <dir>", `state directory (default /var/lib/kagemusha/${role})`)
    .option("--config <file>", "JSON file with the same keys (camelCase); flags override it")
    .addOption(new Option("--log-level <level>", "log level (default info)").choices(LOG_LEVELS))
    .option(
      "--datapath-workers <n>",
      "data-path threads: 1 = both directions in one (default), 2 = one per direction",
    );
}

function build(result: { code: number }): Command {
  const program = new Command("kagemusha")
    .description(
      "Guest-transparent Mobile IPv6 (RFC 6275) for live-migrating VMs: the host-side mobile\n" +
        "node (mn) and a userland home agent (ha).",
    )
    .showHelpAfterError()
    .exitOverride();

  common(
    program.command("ha").description("run the userland home agent (RFC 6275 §10)"),
    "ha",
  )
    .option("--interface <iface>", "home link interface")
    .option("--address <addr>", "home agent address on the home link")
    .option("--home-prefix <prefix/len>", "home subnet prefix")
    .option("--allow <hoa>", "accept only these home addresses (repeatable)", collect, undefined)
    .option("--max-lifetime <seconds>", "largest binding lifetime granted (default 3600)")
    .addOption(
      new Option("--dad <mode>", "duplicate address detection before accepting (default strict)")
        .choices(["strict", "optimistic"]),
    )
    .option("--tunnel-device <name>", "tun device carrying intercepted packets (default kgm-ha0)")
    .option(
      "--require-esp",
      "drop BUs for home addresses without an ESP SA (SAs come from --config: esp)",
    )
    .action(async (opts) => {
      const config = loadHaConfig(opts);
      requireInterface(config.interface);
      await setupLogging(config.logLevel);
      const { runHomeAgent } = await import("../ha/daemon.ts");
      result.code = await runHomeAgent(config);
    });

  common(
    program.command("mn").description(
      "run the guest-transparent mobile node for one or more VMs (RFC 6275 §11)",
    ),
    "mn",
  )
    .option("--interface <iface>", "foreign link interface (the care-of address lives here)")
    .option("--care-of <addr>", "care-of address (default: the interface's global address)")
    .option("--home-agent <addr>", "home agent address")
    .option("--home-address <hoa/len>", "the VM's home address and home prefix length")
    .option("--vm-mac <mac>", "the VM NIC's MAC address")
    .option("--tap <name>", "tap device the daemon creates for the VM")
    .option("--bridge <name>", "bridge joining the tap and the VM's NIC (created if missing)")
    .option("--router-ll <addr>", "link-local address of the pseudo home router (default fe80::1)")
    .option("--router-mac <mac>", "MAC the pseudo home network answers with (default: derived)")
    .option("--lifetime <seconds>", "binding lifetime requested (default 600)")
    .option("--deregister-on-exit", "send a deregistration BU before exiting")
    .option("--standby", "start without registering; wait for the handover control command")
    .action(async (opts) => {
      const config = loadMnConfig(opts);
      requireInterface(config.interface);
      await setupLogging(config.logLevel);
      const { runMobileNode } = await import("../mn/daemon.ts");
      result.code = await runMobileNode(config);
    });

  program.command("status")
    .description("show bindings and counters of a running daemon")
    .requiredOption("--control <path>", "the daemon's control socket")
    .option("--json", "print JSON")
    .action(async (opts: { control: string; json?: boolean }) => {
      const status = await controlRequest(opts.control, "status");
      console.log(opts.json ? JSON.stringify(status, null, 2) : formatStatus(status));
    });

  program.command("ctl")
    .description("send one control command (e.g. handover, export) and print its JSON result")
    .requiredOption("--control <path>", "the daemon's control socket")
    .argument("<command>", "control command")
    .argument("[args]", "JSON arguments")
    .action(async (command: string, args: string | undefined, opts: { control: string }) => {
      let parsed: unknown;
      if (args !== undefined) {
        try {
          parsed = JSON.parse(args);
        } catch {
          throw new ConfigError([`args: not valid JSON: ${args}`]);
        }
      }
      console.log(JSON.stringify(await controlRequest(opts.control, command, parsed), null, 2));
    });
  return program;
}

/** Runs the CLI with `args` (without the program name); resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const result = { code: 0 };
  const program = build(result);
  try {
    await program.parseAsync(args, { from: "user" });
    return result.code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    if (e instanceof ConfigError) {
      console.error(`kagemusha: configuration error:\n  ${e.problems.join("\n  ")}`);
      return EXIT_USAGE;
    }
    console.error(`kagemusha: ${e instanceof Error ? e.message : String(e)}`);
    return EXIT_FAILURE;
  }
}
