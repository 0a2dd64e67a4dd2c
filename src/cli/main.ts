/**
 * Command-line entry: `kagemusha ha|mn|status`.
 *
 * @module
 */
import { Command, CommanderError } from "commander";

/** Exit code for usage and configuration errors. */
export const EXIT_USAGE = 2;

/** Runs the CLI with `args` (without the program name); resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const program = new Command("kagemusha")
    .description("Guest-transparent Mobile IPv6 for live-migrating VMs (RFC 6275)")
    .exitOverride();
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    throw e;
  }
}
