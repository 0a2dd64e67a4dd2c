/**
 * Small JSON state files (binding caches, sequence numbers) that survive a
 * restart. Writes are atomic: a temporary file in the same directory, fsync,
 * then rename over the old one.
 *
 * @module
 */

/** A directory of named JSON documents. */
export class StateStore {
  constructor(readonly dir: string) {}

  #path(name: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) {
      throw new TypeError(`state name ${JSON.stringify(name)} is not a plain file name`);
    }
    return `${this.dir}/${name}.json`;
  }

  /** The stored value, or undefined when absent. A corrupt file throws, naming it. */
  read(name: string): unknown | undefined {
    const path = this.#path(name);
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`state file ${path} is not valid JSON: ${(e as Error).message}`);
    }
  }

  /** Stores `value` atomically (the directory is created when missing). */
  write(name: string, value: unknown): void {
    const path = this.#path(name);
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp${Deno.pid}`;
    const bytes = new TextEncoder().encode(JSON.stringify(value, null, 1) + "\n");
    try {
      const f = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
      try {
        // writeSync may write less than asked: loop until everything is on disk
        for (let off = 0; off < bytes.length;) off += f.writeSync(bytes.subarray(off));
        f.syncSync();
      } finally {
        f.close();
      }
      Deno.renameSync(tmp, path);
    } catch (e) {
      try {
        Deno.removeSync(tmp);
      } catch { /* never created */ }
      throw e;
    }
  }

  /** Removes `name` if present. */
  remove(name: string): void {
    try {
      Deno.removeSync(this.#path(name));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
