/**
 * A tiny TCP echo pair for the probes: `server PORT` or
 * `client ADDRESS PORT INTERVAL_MS`. The client detects resets and stalls
 * (no echo within 20 s) and reports them as `error …`.
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
} else {
  console.error("usage: tcp_echo.ts server PORT | client ADDRESS PORT INTERVAL_MS");
  Deno.exit(2);
}
