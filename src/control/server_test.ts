import assert from "node:assert/strict";
import { ControlServer } from "./server.ts";
import { controlRequest } from "./client.ts";

Deno.test("control socket: dispatch, errors, unknown command, cleanup", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/run/ctl.sock`;
  const server = await ControlServer.listen(path, {
    status: () => ({ role: "test", n: 1 }),
    echo: (args) => args,
    fail: () => {
      throw new Error("no binding for 2001:db8::10");
    },
  });
  try {
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.deepEqual(await controlRequest(path, "status"), { role: "test", n: 1 });
    assert.deepEqual(await controlRequest(path, "echo", { seq: 7 }), { seq: 7 });
    await assert.rejects(controlRequest(path, "fail"), /no binding for 2001:db8::10/);
    await assert.rejects(
      controlRequest(path, "nope"),
      /unknown command "nope" \(known: status, echo, fail\)/,
    );
    await assert.rejects(ControlServer.listen(path, {}), /in use by another process/);
    // raw garbage gets a JSON error, the connection stays usable
    const conn = await Deno.connect({ transport: "unix", path });
    await conn.write(new TextEncoder().encode('garbage\n{"cmd":"status"}\n'));
    const buf = new Uint8Array(4096);
    let text = "";
    while (text.split("\n").length < 3) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    const [a, b] = text.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(a, { ok: false, error: "request is not valid JSON" });
    assert.deepEqual(b, { ok: true, result: { role: "test", n: 1 } });
  } finally {
    await server.close();
    await server.close();
  }
  await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
  // a stale socket file (no listener) is replaced
  const l = Deno.listen({ transport: "unix", path });
  l.close();
  const again = await ControlServer.listen(path, { status: () => 1 });
  assert.equal(await controlRequest(path, "status"), 1);
  await again.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("control client: unreachable socket names the path", async () => {
  await assert.rejects(
    controlRequest("/nonexistent/kagemusha.sock", "status"),
    /cannot reach control socket \/nonexistent\/kagemusha\.sock/,
  );
});
