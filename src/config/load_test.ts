import assert from "node:assert/strict";
import { ConfigError, fieldName, loadHaConfig, loadMnConfig } from "./load.ts";
import { defaultRouterMac } from "./schema.ts";

const HA = {
  interface: "eth0",
  address: "2001:DB8:2000:0::1",
  homePrefix: "2001:db8:2000::1/64",
};

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("ha config: flags normalised, defaults applied", () => {
  const c = loadHaConfig(HA);
  assert.equal(c.address, "2001:db8:2000::1");
  assert.deepEqual(c.homePrefix, { prefix: "2001:db8:2000::", length: 64 });
  assert.equal(c.maxLifetime, 3600);
  assert.equal(c.dad, "strict");
  assert.deepEqual(c.allow, []);
  assert.equal(c.control, "/run/kagemusha/ha.sock");
  assert.equal(c.stateDir, "/var/lib/kagemusha/ha");
});

Deno.test("ha config: each bad field is named", () => {
  const outside = problems(() => loadHaConfig({ ...HA, address: "2001:db8:9::1" }));
  assert.ok(
    outside.some((s) => s.startsWith("--address: ") && s.includes("not inside home prefix")),
    outside.join(),
  );
  const p = problems(() =>
    loadHaConfig({
      ...HA,
      maxLifetime: "999999",
      allow: ["2001:db8:2000::10", "nope"],
      dad: "sometimes",
    })
  );
  assert.ok(p.some((s) => s.startsWith("--max-lifetime: ")), p.join());
  assert.ok(p.some((s) => s.startsWith("allow[1]: ") && s.includes('"nope"')), p.join());
  assert.ok(p.some((s) => s.startsWith("--dad: ")), p.join());
});

Deno.test("ha config: missing required flags and unknown file keys are errors", async () => {
  const p = problems(() => loadHaConfig({}));
  for (const f of ["--interface", "--address", "--home-prefix"]) {
    assert.ok(p.some((s) => s.startsWith(f + ":")), `${f} not named in ${p}`);
  }
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/ha.json`;
    await Deno.writeTextFile(file, JSON.stringify({ ...HA, maxLifeTime: 5 }));
    const q = problems(() => loadHaConfig({ config: file }));
    assert.ok(q.some((s) => s.includes('"maxLifeTime"')), q.join());
    await Deno.writeTextFile(file, "{ not json");
    assert.match(problems(() => loadHaConfig({ config: file }))[0], /--config: .* not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ha config: flags override the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/ha.json`;
    await Deno.writeTextFile(file, JSON.stringify({ ...HA, maxLifetime: 100, dad: "optimistic" }));
    const c = loadHaConfig({ config: file, maxLifetime: "200", dad: undefined });
    assert.equal(c.maxLifetime, 200);
    assert.equal(c.dad, "optimistic");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const MN = {
  interface: "eth0",
  homeAgent: "2001:db8:2000::1",
  homeAddress: "2001:db8:2000::10/64",
  vmMac: "52:54:00:00:00:10",
  tap: "kgm0",
};

Deno.test("mn config: one VM from flags, router MAC derived and distinct", () => {
  const c = loadMnConfig(MN);
  assert.equal(c.vms.length, 1);
  const vm = c.vms[0];
  assert.equal(vm.homeAddress, "2001:db8:2000::10");
  assert.equal(vm.prefixLength, 64);
  assert.equal(vm.routerLl, "fe80::1");
  assert.equal(vm.routerMac, defaultRouterMac("52:54:00:00:00:10"));
  assert.notEqual(vm.routerMac, vm.vmMac);
  assert.equal(parseInt(vm.routerMac.slice(0, 2), 16) & 3, 2, "locally administered unicast");
  assert.equal(c.lifetime, 600);
  assert.equal(c.deregisterOnExit, false);
});

Deno.test("mn config: VM list from file, duplicates and partial VMs rejected", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/mn.json`;
    const vms = [
      { homeAddress: "2001:db8:2000::10/64", vmMac: "52:54:00:00:00:10", tap: "kgm0" },
      { homeAddress: "2001:db8:2000::11/64", vmMac: "52:54:00:00:00:11", tap: "kgm1", name: "b" },
    ];
    const { homeAddress: _h, vmMac: _m, tap: _t, ...rest } = MN;
    await Deno.writeTextFile(file, JSON.stringify({ ...rest, vms }));
    const c = loadMnConfig({ config: file });
    assert.equal(c.vms.length, 2);
    assert.deepEqual(c.vms.map((v) => v.name), ["kgm0", "b"]);

    await Deno.writeTextFile(file, JSON.stringify({ ...MN, vms }));
    const p = problems(() => loadMnConfig({ config: file }));
    assert.ok(p.some((s) => s.includes("tap: kgm0 is used by two VMs")), p.join());
    const q = problems(() => loadMnConfig({ ...MN, tap: undefined }));
    assert.ok(q.some((s) => s.startsWith("--tap: required")), q.join());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mn config: a router MAC shared by two VMs on one bridge is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/mn.json`;
    const { homeAddress: _h, vmMac: _m, tap: _t, ...rest } = MN;
    const vm = (i: number, bridge: string) => ({
      homeAddress: `2001:db8:2000::${10 + i}/64`,
      vmMac: `52:54:00:00:00:1${i}`,
      tap: `kgm${i}`,
      bridge,
      routerMac: "02:00:00:00:00:01",
    });
    await Deno.writeTextFile(file, JSON.stringify({ ...rest, vms: [vm(0, "br0"), vm(1, "br0")] }));
    const p = problems(() => loadMnConfig({ config: file }));
    assert.ok(p.some((s) => s.includes("also used by vms[0] on the same bridge")), p.join());
    await Deno.writeTextFile(file, JSON.stringify({ ...rest, vms: [vm(0, "br0"), vm(1, "br1")] }));
    assert.equal(loadMnConfig({ config: file }).vms.length, 2, "different bridges are fine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mn config: bad values are named", () => {
  const p = problems(() =>
    loadMnConfig({
      ...MN,
      homeAgent: "fe80::1",
      vmMac: "01:00:5e:00:00:01",
      routerLl: "2001:db8::1",
      homeAddress: "2001:db8:2000::10",
      tap: "this-name-is-too-long",
    })
  );
  for (const f of ["--home-agent", "--vm-mac", "--router-ll", "--home-address", "--tap"]) {
    assert.ok(p.some((s) => s.startsWith(f + ":")), `${f} not named in ${p.join(" | ")}`);
  }
});

Deno.test("fieldName renders flags and nested paths", () => {
  assert.equal(fieldName(["homeAgent"]), "--home-agent");
  assert.equal(fieldName(["vms", 2, "tap"]), "vms[2].tap");
});

const GCM = (spi: number, fill: string) => ({
  spi,
  algorithm: "aes-gcm-128",
  key: fill.repeat(40),
});

Deno.test("ha config: ESP per home address, SPIs and prefix checked, keys never from flags", () => {
  const ok = loadHaConfig({
    ...HA,
    esp: [{ homeAddress: "2001:db8:2000::10", bu: GCM(1000, "a"), ba: GCM(1001, "b") }],
    requireEsp: true,
  });
  assert.equal(ok.esp[0].bu.spi, 1000);
  assert.equal(ok.requireEsp, true);
  const p = problems(() =>
    loadHaConfig({
      ...HA,
      esp: [
        { homeAddress: "2001:db8:2000::10", bu: GCM(1000, "a"), ba: GCM(1000, "b") },
        { homeAddress: "2001:db8:9::11", bu: GCM(1000, "a"), ba: { ...GCM(1003, "b"), key: "ab" } },
      ],
    })
  );
  assert.ok(p.some((s) => s.startsWith("esp[0].ba.spi: ")), p.join(" | "));
  assert.ok(
    p.some((s) => s.startsWith("esp[1].homeAddress: ") && s.includes("not inside")),
    p.join(" | "),
  );
  assert.ok(
    p.some((s) => s.startsWith("esp[1].bu.spi: ") && s.includes("also the BU SPI")),
    p.join(" | "),
  );
  assert.ok(p.some((s) => s.startsWith("esp[1].ba.key: ")), p.join(" | "));
  const q = problems(() => loadHaConfig({ ...HA, requireEsp: true }));
  assert.ok(q.some((s) => s.startsWith("--require-esp: ")), q.join(" | "));
});

Deno.test("mn config: ESP pair per VM; BA SPIs unique across VMs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/mn.json`;
    const { homeAddress: _h, vmMac: _m, tap: _t, ...rest } = MN;
    const vm = (i: number) => ({
      homeAddress: `2001:db8:2000::${10 + i}/64`,
      vmMac: `52:54:00:00:00:1${i}`,
      tap: `kgm${i}`,
      esp: { bu: GCM(2000 + i, "c"), ba: GCM(3000, "d") },
    });
    await Deno.writeTextFile(file, JSON.stringify({ ...rest, vms: [vm(0)] }));
    assert.equal(loadMnConfig({ config: file }).vms[0].esp?.ba.spi, 3000);
    await Deno.writeTextFile(file, JSON.stringify({ ...rest, vms: [vm(0), vm(1)] }));
    const p = problems(() => loadMnConfig({ config: file }));
    assert.ok(
      p.some((s) => s.includes("vms[1].esp.ba.spi: 3000 is also the BA SPI of vms[0]")),
      p.join(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mn config: top-level esp belongs to the VM given by flags", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/mn.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({ esp: { bu: GCM(2000, "c"), ba: GCM(3000, "d") } }),
    );
    const c = loadMnConfig({ ...MN, config: file });
    assert.equal(c.vms.length, 1);
    assert.equal(c.vms[0].esp?.bu.spi, 2000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("data-path Workers: default 1, 2 accepted from a flag, anything else named", () => {
  assert.equal(loadHaConfig(HA).datapathWorkers, 1);
  assert.equal(loadMnConfig(MN).datapathWorkers, 1);
  assert.equal(loadHaConfig({ ...HA, datapathWorkers: "2" }).datapathWorkers, 2);
  assert.equal(loadMnConfig({ ...MN, datapathWorkers: "2" }).datapathWorkers, 2);
  assert.equal(loadMnConfig({ ...MN, datapathWorkers: 2 }).datapathWorkers, 2); // JSON number
  for (const bad of ["0", "3", "1.5", "many", "0x2", true, [2]]) {
    for (
      const load of [
        () => loadHaConfig({ ...HA, datapathWorkers: bad }),
        () => loadMnConfig({ ...MN, datapathWorkers: bad }),
      ]
    ) {
      const p = problems(load);
      assert.ok(
        p.some((s) => s.startsWith("--datapath-workers: must be 1 (both directions")),
        `${bad}: ${p.join(" | ")}`,
      );
    }
  }
});
