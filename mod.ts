/**
 * Kagemusha: guest-transparent Mobile IPv6 (RFC 6275) for live-migrating VMs.
 *
 * Library entry point. Executed directly (`deno run -A mod.ts …` or the
 * compiled binary), it runs the command-line interface.
 *
 * @module
 */

export * from "./src/wire/mod.ts";
export * from "./src/ipsec/mod.ts";
export * from "./src/tunnel/mod.ts";
export { loadHaConfig, loadMnConfig } from "./src/config/load.ts";
export type { HaConfig, MnConfig, VmConfig } from "./src/config/schema.ts";
export { runHomeAgent } from "./src/ha/daemon.ts";
export { runMobileNode } from "./src/mn/daemon.ts";
export { HomeAgentCore } from "./src/ha/core.ts";
export { BindingUpdateListEntry } from "./src/mn/binding_update_list.ts";
export { handleVmFrame, makePseudoHomeContext } from "./src/mn/pseudo_home.ts";
export { controlRequest } from "./src/control/client.ts";

if (import.meta.main) {
  const { main } = await import("./src/cli/main.ts");
  Deno.exit(await main(Deno.args));
}
