import assert from "node:assert/strict";
import { formatStatus } from "./status.ts";

const MOD = new URL("../../mod.ts", import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("cli: --help exits 0 and lists the commands", async () => {
  const r = await cli("--help");
  assert.equal(r.code, 0);
  for (const c of ["ha", "mn", "status", "ctl"]) assert.match(r.out, new RegExp(`\\n  ${c}\\b`));
});

Deno.test("cli: usage and config errors exit 2 naming the flag", async () => {
  const unknown = await cli("ha", "--bogus");
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown option '--bogus'/);
  const bad = await cli(
    "mn",
    "--interface",
    "eth0",
    "--home-agent",
    "2001:db8:2000::1",
    "--home-address",
    "2001:db8:2000::10/64",
    "--vm-mac",
    "zz:54:00:00:00:10",
    "--tap",
    "kgm0",
    "--lifetime",
    "-5",
    "--datapath-workers",
    "3",
  );
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--vm-mac: not a MAC address: "zz:54:00:00:00:10"/);
  assert.match(bad.err, /--lifetime: must be at least 4 s/);
  assert.match(bad.err, /--datapath-workers: must be 1 \(both directions in one thread\) or 2/);
  const choice = await cli("ha", "--dad", "maybe");
  assert.equal(choice.code, 2);
  assert.match(choice.err, /--dad/);
});

Deno.test("cli: a missing interface is a configuration error (exit 2), nothing created", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await cli(
      "ha",
      "--interface",
      "kgmnosuch0",
      "--address",
      "2001:db8:2000::1",
      "--home-prefix",
      "2001:db8:2000::/64",
      "--control",
      `${dir}/run/ha.sock`,
      "--state-dir",
      `${dir}/state`,
    );
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--interface: no network interface named "kgmnosuch0"/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no control socket or state directory");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: status against a missing socket fails with exit 1 and names it", async () => {
  const r = await cli("status", "--control", "/nonexistent/x.sock");
  assert.equal(r.code, 1);
  assert.match(r.err, /cannot reach control socket \/nonexistent\/x\.sock/);
});

Deno.test("status table shows bindings and non-zero counters", () => {
  const text = formatStatus({
    role: "ha",
    bindings: [{
      homeAddress: "2001:db8:2000::10",
      careOfAddress: "2001:db8:3000::3",
      sequence: 7,
    }],
    counters: { bu_received: 3, ba_sent: 0 },
  });
  assert.match(text, /^role: ha\n/);
  assert.match(text, /homeAddress\s+careOfAddress\s+sequence/);
  assert.match(text, /2001:db8:2000::10\s+2001:db8:3000::3\s+7/);
  assert.match(text, /bu_received 3/);
  assert.doesNotMatch(text, /ba_sent/);
});
