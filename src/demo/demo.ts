/**
 * `deno task demo`: the seed's experiment in network namespaces. Builds the
 * reference topology, starts `kagemusha ha` and one `kagemusha mn` per host,
 * pings the VM from the correspondent every 10 ms while a TCP conversation
 * runs, moves the VM home → B → C → home the way a live-migration wrapper
 * would (export the binding on the old host, move, handover on the new one),
 * prints a timeline and removes everything — also on Ctrl-C.
 *
 * @module
 */
import { controlRequest } from "../control/client.ts";
import { PingProbe, TcpProbe } from "./probes.ts";
import { ADDR, type HostName, Topology } from "./topology.ts";

/** One row of the timeline, times in ms after the VM's NIC moved. */
export interface MoveResult {
  from: HostName;
  to: HostName;
  buSentMs: number | null;
  baReceivedMs: number | null;
  firstReplyMs: number;
  pingsLost: number;
  tcpEchoesAfter: number;
  state: string;
}

interface BindingStatus {
  homeAddress: string;
  state: string;
  sequence: number;
  lastBuSent: number | null;
  lastBaReceived: number | null;
}

async function bindingOn(t: Topology, host: HostName): Promise<BindingStatus> {
  const s = await controlRequest(t.controlPath(host), "status") as { bindings: BindingStatus[] };
  const b = s.bindings.find((x) => x.homeAddress === ADDR.hoa);
  if (!b) throw new Error(`${host}: no binding for ${ADDR.hoa} in status`);
  return b;
}

/** Waits until `path` answers `status`. */
export async function waitControl(path: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await controlRequest(path, "status", undefined, 1000);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${path} not answering: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Moves the VM from its current host to `to` like a migration wrapper:
 * export on the source host (which stops refreshing), move the NIC, then
 * handover with the exported sequence on the destination. Resolves when the
 * destination's binding settled and a ping answered.
 */
export async function migrate(
  t: Topology,
  to: HostName,
  ping: PingProbe,
  tcp?: TcpProbe,
): Promise<MoveResult> {
  const from = t.vmHost;
  const exported = await controlRequest(t.controlPath(from), "export");
  const tMove = Date.now();
  await t.moveVm(to);
  await controlRequest(t.controlPath(to), "handover", exported);
  const settled = to === "hostA" ? "deregistered" : "registered";
  const deadline = Date.now() + 20_000;
  let b = await bindingOn(t, to);
  while (b.state !== settled || b.lastBaReceived === null || b.lastBaReceived < tMove) {
    if (Date.now() > deadline) {
      throw new Error(`${to}: binding still ${b.state} 20 s after the move`);
    }
    await new Promise((r) => setTimeout(r, 5));
    b = await bindingOn(t, to);
  }
  const settledAt = b.lastBaReceived;
  const reply = await ping.waitReplyAfter(settledAt);
  if (tcp) await tcp.waitProgress(5);
  const rel = (x: number | null) => x === null || x < tMove ? null : x - tMove;
  return {
    from,
    to,
    buSentMs: rel(b.lastBuSent),
    baReceivedMs: rel(b.lastBaReceived),
    firstReplyMs: reply.at - tMove,
    pingsLost: ping.lostBetween(tMove, settledAt),
    tcpEchoesAfter: tcp?.echoes() ?? 0,
    state: b.state,
  };
}

/** The timeline as a markdown table. */
export function formatTimeline(rows: MoveResult[]): string {
  const ms = (x: number | null) => x === null ? "-" : x.toFixed(0);
  const out = [
    "| move | last BU sent | BA received | first ping reply | pings lost (10 ms) | binding |",
    "| --- | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.from} → ${r.to} | ${ms(r.buSentMs)} ms | ${ms(r.baReceivedMs)} ms | ` +
        `${ms(r.firstReplyMs)} ms | ${r.pingsLost} | ${r.state} |`,
    );
  }
  return out.join("\n");
}

async function demo(): Promise<number> {
  const t = new Topology();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    console.error("\ninterrupted: removing the namespaces …");
    t.close().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    console.log("building the reference topology (namespaces ha, cn, hostA/B/C, vm, sw) …");
    await t.build();
    const ha = t.startHomeAgent();
    await waitControl(`${t.dir}/ha.sock`);
    for (const h of ["hostA", "hostB", "hostC"] as const) {
      t.startMobileNode(h, ["--standby"]);
      await waitControl(t.controlPath(h));
    }
    console.log("home agent and three mobile-node daemons are up; the VM is at home (hostA)");
    const ping = new PingProbe(t.cn, ADDR.hoa, 10);
    const tcp = new TcpProbe(t.vm, t.cn, ADDR.hoa);
    await tcp.start();
    await new Promise((r) => setTimeout(r, 1000));
    const rows: MoveResult[] = [];
    for (const to of ["hostB", "hostC", "hostA"] as const) {
      console.log(`moving the VM ${t.vmHost} → ${to} …`);
      rows.push(await migrate(t, to, ping, tcp));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const tcpError = tcp.error();
    console.log(`\ntimeline (ms after the VM's NIC moved; ping every 10 ms from cn):\n`);
    console.log(formatTimeline(rows));
    console.log(
      `\nTCP conversation cn → VM: ${tcp.echoes()} echoes, ` +
        (tcpError ? `BROKEN: ${tcpError}` : "never reset"),
    );
    const haStatus = await controlRequest(`${t.dir}/ha.sock`, "status") as {
      bindings: unknown[];
      counters: Record<string, number>;
    };
    console.log(
      `home agent: ${haStatus.bindings.length} binding(s) left (expected 0 after returning home)`,
    );
    await ping.stop();
    await tcp.stop();
    const st = await ha.stop("SIGTERM");
    console.log(`home agent stopped with exit code ${st.code}`);
    return tcpError ? 1 : 0;
  } catch (e) {
    if (interrupted) return 130;
    console.error(`demo failed: ${(e as Error).stack ?? e}`);
    for (const p of t.lab.processes) {
      console.error(
        `--- ${p.name} stderr (tail) ---\n${p.stderr.split("\n").slice(-15).join("\n")}`,
      );
    }
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await t.close();
    console.log("removed every namespace, link and process of the demo");
  }
}

if (import.meta.main) Deno.exit(await demo());
