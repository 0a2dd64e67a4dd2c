/**
 * The local control socket: a unix stream socket speaking one JSON object per
 * line. Request `{"cmd":"status","args":…}`, reply `{"ok":true,"result":…}` or
 * `{"ok":false,"error":"…"}`. Used by `kagemusha status`, the migration
 * wrapper and tests.
 *
 * @module
 */
import { dirname } from "node:path";
import { logger } from "../log.ts";

const log = logger("control");

/** A control command handler; a thrown Error becomes `{"ok":false,"error":message}`. */
export type ControlHandler = (args: unknown) => unknown | Promise<unknown>;

/** Longest request line accepted (bytes). */
export const MAX_REQUEST = 64 * 1024;

/** Listens on a unix socket and dispatches JSON-line requests to handlers. */
export class ControlServer {
  #conns = new Set<Deno.UnixConn>();
  #closed = false;
  #loop: Promise<void>;

  private constructor(
    readonly path: string,
    readonly listener: Deno.Listener<Deno.UnixConn, Deno.UnixAddr>,
    readonly handlers: Record<string, ControlHandler>,
  ) {
    this.#loop = this.#accept();
  }

  /**
   * Creates the socket at `path` (parent directory made with mode 0700, socket
   * mode 0600). A stale socket file whose owner is gone is replaced; a live
   * one is an error, so two daemons never share a control path.
   */
  static async listen(
    path: string,
    handlers: Record<string, ControlHandler>,
  ): Promise<ControlServer> {
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      const st = await Deno.lstat(path);
      if (!st.isSocket) throw new Error(`control path ${path} exists and is not a socket`);
      let live = false;
      try {
        const c = await Deno.connect({ transport: "unix", path });
        c.close();
        live = true;
      } catch { /* stale */ }
      if (live) throw new Error(`control socket ${path} is in use by another process`);
      await Deno.remove(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const listener = Deno.listen({ transport: "unix", path });
    try {
      await Deno.chmod(path, 0o600);
    } catch (e) {
      listener.close();
      await Deno.remove(path).catch(() => {});
      throw e;
    }
    return new ControlServer(path, listener, handlers);
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.listener) {
        this.#conns.add(conn);
        this.#serve(conn).finally(() => {
          this.#conns.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        });
      }
    } catch (e) {
      if (!this.#closed) log.error("control listener failed: {error}", { error: String(e) });
    }
  }

  async #serve(conn: Deno.UnixConn): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of conn.readable) {
        buf += dec.decode(chunk, { stream: true });
        if (buf.length > MAX_REQUEST) {
          await this.#reply(conn, { ok: false, error: `request longer than ${MAX_REQUEST} bytes` });
          return;
        }
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) await this.#reply(conn, await this.#dispatch(line));
        }
      }
    } catch (e) {
      if (!this.#closed) log.debug("control connection ended: {error}", { error: String(e) });
    }
  }

  async #dispatch(line: string): Promise<unknown> {
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch {
      return { ok: false, error: "request is not valid JSON" };
    }
    if (
      typeof req !== "object" || req === null || typeof (req as { cmd?: unknown }).cmd !== "string"
    ) {
      return { ok: false, error: 'request needs a string field "cmd"' };
    }
    const { cmd, args } = req as { cmd: string; args?: unknown };
    const h = Object.hasOwn(this.handlers, cmd) ? this.handlers[cmd] : undefined;
    if (!h) {
      return {
        ok: false,
        error: `unknown command "${cmd}" (known: ${Object.keys(this.handlers).join(", ")})`,
      };
    }
    try {
      return { ok: true, result: await h(args) };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async #reply(conn: Deno.UnixConn, value: unknown): Promise<void> {
    const w = conn.writable.getWriter();
    try {
      await w.write(new TextEncoder().encode(JSON.stringify(value) + "\n"));
    } finally {
      w.releaseLock();
    }
  }

  /** Stops listening, closes open connections and removes the socket file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.listener.close();
    } catch { /* closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#loop;
    try {
      await Deno.remove(this.path);
    } catch { /* gone */ }
  }
}
