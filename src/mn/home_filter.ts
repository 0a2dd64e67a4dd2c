/**
 * A classic BPF program (socket(7) SO_ATTACH_FILTER, Linux `Documentation/networking/filter`)
 * for the packet socket that watches the home link while a VM deregisters from home (RFC 6275
 * §11.5.4). That socket is promiscuous and bound to every EtherType, so without a filter every
 * frame on the home link would be copied to the daemon's main thread; with it the kernel only
 * queues IPv6 frames whose source is the home agent and whose next header is the Mobility
 * Header, a routing header or ESP (the BA protected per RFC 4877 §4) — the BA the daemon
 * waits for. Userland still checks everything
 * (`peekHomeFrame`), so the filter is an optimisation, not a trust boundary.
 *
 * @module
 */

/** Bytes per instruction (`struct sock_filter`: u16 code, u8 jt, u8 jf, u32 k). */
export const BPF_INSN_LEN = 8;

// Instruction classes and modes (linux/bpf_common.h).
const BPF_LD = 0x00;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_W = 0x00;
const BPF_H = 0x08;
const BPF_B = 0x10;
const BPF_ABS = 0x20;
const BPF_JEQ = 0x10;
const BPF_K = 0x00;

/** `ld{,h,b} [k]`, `jeq #k, jt, jf`, `ret #k` opcodes. */
export const BPF_OP = {
  LD_W_ABS: BPF_LD | BPF_W | BPF_ABS,
  LD_H_ABS: BPF_LD | BPF_H | BPF_ABS,
  LD_B_ABS: BPF_LD | BPF_B | BPF_ABS,
  JEQ_K: BPF_JMP | BPF_JEQ | BPF_K,
  RET_K: BPF_RET | BPF_K,
} as const;

/** Bytes of a frame the filter passes up (all of it: the socket's buffer cuts it anyway). */
const ACCEPT_LEN = 0x40000;

/**
 * The program: EtherType 0x86dd, IPv6 source == `homeAgent` (16 bytes), next header MH (135),
 * Routing (43) or ESP (50) → accept; else drop. Instructions in host byte order, ready for
 * `PacketSocket.attachFilter`.
 */
export function homeLinkFilter(homeAgent: Uint8Array): Uint8Array {
  if (homeAgent.length !== 16) throw new TypeError("homeAgent must be 16 bytes");
  const insns: Array<[number, number, number, number]> = [];
  const DROP = 14;
  const ACCEPT = 15;
  const jf = (to: number) => to - (insns.length + 1);
  insns.push([BPF_OP.LD_H_ABS, 0, 0, 12]); // EtherType
  insns.push([BPF_OP.JEQ_K, 0, jf(DROP), 0x86dd]);
  for (let w = 0; w < 4; w++) {
    const k = ((homeAgent[4 * w] << 24) | (homeAgent[4 * w + 1] << 16) |
      (homeAgent[4 * w + 2] << 8) | homeAgent[4 * w + 3]) >>> 0;
    insns.push([BPF_OP.LD_W_ABS, 0, 0, 14 + 8 + 4 * w]); // IPv6 source, word w
    insns.push([BPF_OP.JEQ_K, 0, jf(DROP), k]);
  }
  insns.push([BPF_OP.LD_B_ABS, 0, 0, 14 + 6]); // next header
  insns.push([BPF_OP.JEQ_K, jf(ACCEPT), 0, 135]);
  insns.push([BPF_OP.JEQ_K, jf(ACCEPT), 0, 43]);
  insns.push([BPF_OP.JEQ_K, jf(ACCEPT), jf(DROP), 50]);
  insns.push([BPF_OP.RET_K, 0, 0, 0]); // DROP
  insns.push([BPF_OP.RET_K, 0, 0, ACCEPT_LEN]); // ACCEPT
  if (insns.length !== ACCEPT + 1) throw new Error("homeLinkFilter: jump targets out of date");
  const out = new Uint8Array(insns.length * BPF_INSN_LEN);
  const dv = new DataView(out.buffer);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  insns.forEach(([code, jt, jfv, k], i) => {
    dv.setUint16(i * 8, code, le);
    out[i * 8 + 2] = jt;
    out[i * 8 + 3] = jfv;
    dv.setUint32(i * 8 + 4, k, le);
  });
  return out;
}
