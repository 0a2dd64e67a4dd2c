/**
 * Client side of the control socket (see server.ts for the protocol).
 *
 * @module
 */

/** Sends one request and returns its result; throws with the daemon's error text. */
export async function controlRequest(
  path: string,
  cmd: string,
  args?: unknown,
  timeoutMs = 5000,
): Promise<unknown> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (e) {
    throw new Error(`cannot reach control socket ${path}: ${(e as Error).message}`);
  }
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const w = conn.writable.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({ cmd, args }) + "\n"));
    w.releaseLock();
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of conn.readable) {
      buf += dec.decode(chunk, { stream: true });
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        const reply = JSON.parse(buf.slice(0, nl)) as {
          ok: boolean;
          result?: unknown;
          error?: string;
        };
        if (!reply.ok) throw new Error(reply.error ?? "request failed");
        return reply.result;
      }
    }
    throw new Error(`control socket ${path} closed without a reply (timeout ${timeoutMs} ms?)`);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by timer */ }
  }
}
