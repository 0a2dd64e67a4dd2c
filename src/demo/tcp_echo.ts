/**
 * A tiny TCP echo pair for the probes: `server PORT` or
 * `client ADDRESS PORT INTERVAL_MS`. The client detects resets and stalls
 * (no echo within 20 s) and reports them as `error …`.
 *
 * Bulk transfer with an integrity check: `sink PORT` prints
 * `received BYTES SHA256` for the first connection; `source ADDRESS PORT
 * BYTES` sends a pseudo-random stream and prints `sent BYTES SHA256`.
 *
 * @module
 */
const [mode, ...rest] = Deno.args;

if (mode === "server") {
  const listener = Deno.listen({ hostname: "::", port: Number(rest[0]) });
  console.log("listening");
  for await (const conn of listener) {
    (async () => {
      try {
        await conn.readable.pipeTo(conn.writable);
      } catch { /* peer went away */ }
    })();
  }
} else if (mode === "client") {
  const [address, port, interval] = rest;
  const conn = await Deno.connect({ hostname: address, port: Number(port) });
  const reader = conn.readable.getReader();
  const writer = conn.writable.getWriter();
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  let buf = "";
  let n = 0;
  try {
    for (;;) {
      n++;
      await writer.write(enc.encode(`${n}\n`));
      while (!buf.includes("\n")) {
        const timer = setTimeout(() => {
          console.log(`error stall: no echo for ${n} within 20 s`);
          Deno.exit(1);
        }, 20_000);
        const { value, done } = await reader.read();
        clearTimeout(timer);
        if (done) throw new Error("connection closed by peer");
        buf += dec.decode(value, { stream: true });
      }
      const line = buf.slice(0, buf.indexOf("\n"));
      buf = buf.slice(buf.indexOf("\n") + 1);
      if (Number(line) !== n) throw new Error(`echo out of order: sent ${n}, got ${line}`);
      console.log(`ok ${n}`);
      await new Promise((r) => setTimeout(r, Number(interval)));
    }
  } catch (e) {
    console.log(`error ${(e as Error).message}`);
    Deno.exit(1);
  }
} else if (mode === "sink") {
  const listener = Deno.listen({ hostname: "::", port: Number(rest[0]) });
  console.log("listening");
  const conn = await listener.accept();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const c of conn.readable) {
    chunks.push(c);
    total += c.length;
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  console.log(`received ${total} ${await sha256(all)}`);
  listener.close();
} else if (mode === "source") {
  const [address, port, bytes] = rest;
  const data = new Uint8Array(Number(bytes));
  let x = 0x12345678;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  const conn = await Deno.connect({ hostname: address, port: Number(port) });
  const w = conn.writable.getWriter();
  for (let off = 0; off < data.length; off += 65536) await w.write(data.subarray(off, off + 65536));
  await w.close();
  console.log(`sent ${data.length} ${await sha256(data)}`);
} else {
  console.error(
    "usage: tcp_echo.ts server PORT | client ADDRESS PORT INTERVAL_MS | sink PORT |" +
      " source ADDRESS PORT BYTES",
  );
  Deno.exit(2);
}

async function sha256(b: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}
