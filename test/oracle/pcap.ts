/**
 * A minimal libpcap file writer and reader for the oracle tests: the classic
 * format (magic 0xa1b2c3d4, version 2.4, microsecond timestamps), little
 * endian, one link type per file.
 *
 * @module
 */

/** Link types used here (https://www.tcpdump.org/linktypes.html). */
export const LINKTYPE = { ETHERNET: 1, RAW: 101 } as const;

const GLOBAL_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;
const SNAPLEN = 65535;

/**
 * Encodes `packets` as a pcap file. Packet i gets the timestamp i seconds
 * (deterministic output), captured length = original length.
 */
export function encodePcap(packets: Uint8Array[], linktype: number): Uint8Array {
  const total = GLOBAL_HEADER_LEN +
    packets.reduce((n, p) => n + RECORD_HEADER_LEN + p.length, 0);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setInt32(8, 0, true); // thiszone
  v.setUint32(12, 0, true); // sigfigs
  v.setUint32(16, SNAPLEN, true);
  v.setUint32(20, linktype, true);
  let off = GLOBAL_HEADER_LEN;
  packets.forEach((p, i) => {
    if (p.length > SNAPLEN) throw new RangeError(`packet ${i} longer than snaplen`);
    v.setUint32(off, i, true); // ts_sec
    v.setUint32(off + 4, 0, true); // ts_usec
    v.setUint32(off + 8, p.length, true); // incl_len
    v.setUint32(off + 12, p.length, true); // orig_len
    out.set(p, off + RECORD_HEADER_LEN);
    off += RECORD_HEADER_LEN + p.length;
  });
  return out;
}

/** Writes `packets` to a pcap file at `path`. */
export async function writePcap(
  path: string,
  packets: Uint8Array[],
  linktype: number = LINKTYPE_DEFAULT,
): Promise<void> {
  await Deno.writeFile(path, encodePcap(packets, linktype));
}

const LINKTYPE_DEFAULT = LINKTYPE.ETHERNET;

/** Decodes a little-endian, microsecond pcap file (what `encodePcap` writes). */
export function decodePcap(bytes: Uint8Array): { linktype: number; packets: Uint8Array[] } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < GLOBAL_HEADER_LEN || v.getUint32(0, true) !== 0xa1b2c3d4) {
    throw new Error("not a little-endian microsecond pcap file");
  }
  const linktype = v.getUint32(20, true);
  const packets: Uint8Array[] = [];
  let off = GLOBAL_HEADER_LEN;
  while (off + RECORD_HEADER_LEN <= bytes.length) {
    const incl = v.getUint32(off + 8, true);
    const start = off + RECORD_HEADER_LEN;
    if (start + incl > bytes.length) throw new Error(`truncated pcap record at ${off}`);
    packets.push(bytes.slice(start, start + incl));
    off = start + incl;
  }
  if (off !== bytes.length) throw new Error(`trailing bytes in pcap at ${off}`);
  return { linktype, packets };
}
