/**
 * Floods a care-of address with type 2 routing header + BA packets for the M7 receive-budget
 * test (run inside a lab namespace): `deno run -A rh_flood.ts SRC COA HOA SECONDS`. Half the
 * packets come from SRC (not the home agent: dropped by the peek), half from the HA address
 * with a home address nobody has (decoded, then ignored). Prints the count sent.
 *
 * @module
 */

import { IPPROTO_RAW } from "../../ffi/constants.ts";
import { RawSocket6 } from "../../ffi/raw_socket.ts";
import { buildBindingAck } from "../../src/wire/packet.ts";
import { HA } from "./mn_lab.ts";

const [src, coa, hoa, seconds] = Deno.args;
const ba = {
  type: "ba" as const,
  status: 0,
  flags: { key: false, mobileRouter: false, proxy: false },
  sequence: 1,
  lifetime: 15,
  options: [],
};
const forged = buildBindingAck({ homeAgent: src, careOf: coa, homeAddress: hoa, ba });
const stray = buildBindingAck({ homeAgent: HA, careOf: coa, homeAddress: hoa, ba });
using sock = RawSocket6.open(IPPROTO_RAW);
const end = Date.now() + Number(seconds) * 1000;
let sent = 0;
while (Date.now() < end) {
  for (let i = 0; i < 256; i++) {
    try {
      sock.sendRaw(i & 1 ? stray : forged, coa);
      sent++;
    } catch {
      // ENOBUFS under load: keep going
    }
  }
}
console.log(JSON.stringify({ sent }));
