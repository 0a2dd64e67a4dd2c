import assert from "node:assert/strict";
import { StateStore } from "./store.ts";

Deno.test("state store: write/read/remove, atomic replace, bad names refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = new StateStore(`${dir}/nested/state`);
    assert.equal(s.read("bindings"), undefined);
    s.write("bindings", { a: 1 });
    s.write("bindings", { a: 2, b: [1, 2] });
    assert.deepEqual(s.read("bindings"), { a: 2, b: [1, 2] });
    const files = [...Deno.readDirSync(`${dir}/nested/state`)].map((e) => e.name);
    assert.deepEqual(files, ["bindings.json"], "no temporary file left behind");
    assert.equal(Deno.statSync(`${dir}/nested/state/bindings.json`).mode! & 0o777, 0o600);
    s.remove("bindings");
    s.remove("bindings");
    assert.equal(s.read("bindings"), undefined);
    assert.throws(() => s.write("../escape", 1), /not a plain file name/);
    Deno.writeTextFileSync(`${dir}/nested/state/broken.json`, "{");
    assert.throws(() => s.read("broken"), /broken\.json is not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
