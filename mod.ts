/**
 * Kagemusha: guest-transparent Mobile IPv6 (RFC 6275) for live-migrating VMs.
 *
 * Library entry point. Executed directly (`deno run -A mod.ts …` or the
 * compiled binary), it runs the command-line interface.
 *
 * @module
 */

export * from "./src/wire/mod.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
