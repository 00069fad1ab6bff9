// End-to-end load against a local KBS (lab/local-kbs.ts: npm start → wrangler dev → workerd): N concurrent
// simulated guests, half legacy SNP (reference-kbs: /auth, /attest, /key) and half Trustee (/auth, /attest,
// /resource), for a fixed time. Reports flows/s, p50/p99 per endpoint, and memory at start and end: the Worker
// isolate's JS heap (through the inspector, bench/inspector.ts) and the workerd process's RSS.
// `tsx bench/load.ts [--duration 30] [--guests 8]`; `measure()` is what bench/run.ts includes.
// The guests run in this Node process: their own signing and decryption share this machine's cores with
// workerd, so flows/s is a floor for the Worker, not a ceiling.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { toHex, utf8 } from "../src/crypto/bytes";
import { sevArkPem } from "../src/tee/trust";
import { guestKey } from "../lab/guest";
import { certChainOf, guestClient, type Call } from "../lab/guest-client";
import { adminToken, freePort, startLocalKbs, stopLocalKbs, type LocalKbs } from "../lab/local-kbs";
import { createSyntheticChip, type SyntheticChip } from "../lab/synthetic-amd";
import { createSevPlatform, type SevPlatform } from "../lab/synthetic-sev";
import { teeKeyPair } from "../lab/trustee-guest";
import { Inspector } from "./inspector";
import { percentile, runIfMain, type Row, type Section } from "./report";

export const RESOURCE = "default/bench/key";

/** A local KBS that trusts the lab chip's and platform's ARKs, with KDS out of reach (chains travel with the evidence). */
export interface BenchKbs {
  kbs: LocalKbs;
  dir: string;
  chip: SyntheticChip;
  platform: SevPlatform;
  /** The Worker's isolate through wrangler dev's inspector (on a free port). */
  inspector: Inspector;
  /** Calls `/kbs/v0<path>` with a distinct client address per call (the per-address /auth limit is an abuse guard, not what is measured). */
  call: Call;
  admin(method: string, path: string, body?: unknown): Promise<Response>;
  stop(): void;
}

let ipCounter = 0;
/** A fresh address each call: AUTH_PER_IP allows 60 sessions a minute per address. */
const nextIp = () => {
  const n = ++ipCounter;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
};

function benchCall(origin: string): Call {
  return async (path, init = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", nextIp());
    return fetch(`${origin}/kbs/v0${path}`, { ...init, headers, signal: AbortSignal.timeout(30_000) });
  };
}

export async function startBenchKbs(opts: { chip?: SyntheticChip; platform?: SevPlatform; dir?: string; extraArks?: string } = {}): Promise<BenchKbs> {
  const [chip, platform] = await Promise.all([opts.chip ?? createSyntheticChip({ product: "Milan" }), opts.platform ?? createSevPlatform()]);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "edgekbs-bench-"));
  // Both ports at once, so that they differ.
  const [port, inspectorPort] = await Promise.all([freePort(), freePort()]);
  const kbs = await startLocalKbs({
    port,
    dir,
    vars: { EXTRA_TRUSTED_ARKS: chip.arkPem + sevArkPem(platform.chain.ca.ark.bytes) + (opts.extraArks ?? ""), KDS_URL: "http://127.0.0.1:9" },
    args: ["--inspector-port", String(inspectorPort)],
  });
  let inspector: Inspector;
  try {
    inspector = await Inspector.connect(inspectorPort);
  } catch (e) {
    stopLocalKbs(kbs);
    throw e;
  }
  const token = adminToken(kbs);
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${kbs.origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
  return {
    kbs,
    dir,
    chip,
    platform,
    inspector,
    call: benchCall(kbs.origin),
    admin,
    stop: () => {
      inspector.close();
      stopLocalKbs(kbs);
    },
  };
}

export async function registerWorkload(b: BenchKbs, id: string, measurement: Uint8Array, passphrase: string): Promise<void> {
  const register = () => b.admin("POST", "/kbs/v0/register_workload", { workload_id: id, launch_measurement: toHex(measurement), tee_config: "", passphrase });
  let res = await register();
  // wrangler dev reloads the Worker when src/ changes and answers 503 to requests in flight: try again.
  for (let i = 0; i < 5 && res.status === 503; i++) {
    await res.body?.cancel();
    await new Promise((r) => setTimeout(r, 1000));
    res = await register();
  }
  if (res.status >= 300) throw new Error(`register ${id}: ${res.status} ${await res.text()}`);
  await res.body?.cancel();
}

export async function putSecret(b: BenchKbs, id: string, keyId: string, value: string): Promise<void> {
  const res = await b.admin("PUT", `/kbs/v0/admin/workloads/${id}/secrets/${keyId}`, { value });
  if (res.status >= 300) throw new Error(`secret put ${id} ${keyId}: ${res.status} ${await res.text()}`);
  await res.body?.cancel();
}

/** The SNP workload both benches attest to, registered with `passphrase`, and its Trustee resource. */
export async function setUpSnp(b: BenchKbs, passphrase: string): Promise<{ workloadId: string; measurement: Uint8Array }> {
  const snp = { workloadId: "bench-snp", measurement: new Uint8Array(await crypto.subtle.digest("SHA-384", utf8("bench-snp guest image"))) };
  await registerWorkload(b, snp.workloadId, snp.measurement, passphrase);
  await putSecret(b, snp.workloadId, RESOURCE, "bench resource");
  return snp;
}

/** The endpoint a guest call is counted under: its first path segment ("/attest", "/resource/…" → "/resource"). */
export const endpointOf = (path: string) => path.split("/").slice(0, 2).join("/");

/** `res` with its body read in full, so that the time to read it falls inside the caller's measurement. */
export async function buffered(res: Response): Promise<Response> {
  const body = await res.arrayBuffer();
  return new Response(body, { status: res.status, headers: res.headers });
}

/** The workerd processes in the local KBS's process group (npm start's node → wrangler → workerd). */
export function workerdPids(kbs: LocalKbs): number[] {
  const pgid = kbs.process.pid!;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      if (Number(fields[2]) === pgid && comm.startsWith("workerd")) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** VmRSS in MiB, summed over the workerd processes. */
export function workerdRssMiB(kbs: LocalKbs): number {
  let kb = 0;
  for (const pid of workerdPids(kbs)) {
    try {
      kb += Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "–");

export interface LoadResult {
  durationS: number;
  guests: number;
  flows: { legacy: number; trustee: number };
  errors: string[];
  latency: Map<string, number[]>;
  memory: Memory[];
}

/** One memory sample, in MiB: the isolate's JS heap in use and after a full GC, and the workerd processes' RSS. */
export interface Memory {
  t: number;
  heap: number;
  heapAfterGc: number;
  rss: number;
}

export async function runLoad(opts: { durationS: number; guests: number; log?: (s: string) => void }): Promise<LoadResult> {
  const log = opts.log ?? (() => {});
  const b = await startBenchKbs();
  try {
    const passphrase = "bench passphrase";
    const snp = await setUpSnp(b, passphrase);
    const latency = new Map<string, number[]>();
    const timed =
      (proto: string): Call =>
      async (path, init) => {
        const t0 = performance.now();
        const res = await buffered(await b.call(path, init));
        const ms = performance.now() - t0;
        const name = `${proto} ${endpointOf(path)}`;
        (latency.get(name) ?? latency.set(name, []).get(name)!).push(ms);
        return res;
      };
    const legacy = guestClient(timed("legacy"));
    const trustee = guestClient(timed("trustee"));
    const chain = certChainOf(b.chip);
    const flows = { legacy: 0, trustee: 0 };
    const errors: string[] = [];
    const memory: Memory[] = [];
    const started = performance.now();
    const sample = async () => {
      const t = (performance.now() - started) / 1000;
      const rss = workerdRssMiB(b.kbs);
      const heap = (await b.inspector.heapMiB()).used;
      // What the isolate retains: a full GC first (a few ms every few seconds, under load).
      memory.push({ t, rss, heap, heapAfterGc: (await b.inspector.heapMiB(true)).used });
    };
    // Warm up once per protocol so that the start figures are of a running Worker, not of an empty isolate.
    const [rsaKey, ecKey] = await Promise.all([guestKey(), teeKeyPair("EC-P256")]);
    const s0 = await legacy.attestAs(b.chip, rsaKey, snp, { certChain: chain });
    await legacy.releasedSecret(rsaKey, s0, snp.workloadId);
    const t0 = await trustee.trusteeAttestAs(b.chip, ecKey, { measurement: snp.measurement }, { sendChain: true });
    await trustee.trusteeResource(RESOURCE, t0.token, ecKey.privateKey);
    latency.clear();
    const loadStart = performance.now();
    await sample();
    const memoryLog = (m: Memory) => `JS heap ${fmt(m.heap)} MiB (${fmt(m.heapAfterGc)} after GC), RSS ${fmt(m.rss)} MiB`;
    log(`load: ${opts.guests} guests for ${opts.durationS} s against ${b.kbs.origin}; workerd pid(s) ${workerdPids(b.kbs).join(",")}, ${memoryLog(memory[0]!)}`);
    const deadline = loadStart + opts.durationS * 1000;
    // One sample at a time, in order: the last one is taken after the load.
    let sampling = Promise.resolve();
    const sampler = setInterval(() => {
      sampling = sampling.then(async () => {
        await sample();
        const last = memory.at(-1)!;
        log(`  t=${fmt(last.t - memory[0]!.t, 0)} s ${memoryLog(last)}, flows legacy ${flows.legacy} trustee ${flows.trustee}, errors ${errors.length}`);
      });
    }, Math.min(30_000, Math.max(5_000, (opts.durationS * 1000) / 10)));
    const guest = async (i: number) => {
      const isLegacy = i % 2 === 0;
      const key = isLegacy ? await guestKey() : await teeKeyPair("EC-P256");
      while (performance.now() < deadline) {
        try {
          if (isLegacy) {
            const s = await legacy.attestAs(b.chip, key as Awaited<ReturnType<typeof guestKey>>, snp, { certChain: chain });
            const got = await legacy.releasedSecret(key as Awaited<ReturnType<typeof guestKey>>, s, snp.workloadId);
            if (got !== passphrase) throw new Error("wrong passphrase released");
            flows.legacy++;
          } else {
            const k = key as Awaited<ReturnType<typeof teeKeyPair>>;
            const { token } = await trustee.trusteeAttestAs(b.chip, k, { measurement: snp.measurement }, { sendChain: true });
            if ((await trustee.trusteeResource(RESOURCE, token, k.privateKey)) !== "bench resource") throw new Error("wrong resource released");
            flows.trustee++;
          }
        } catch (e) {
          if (errors.length < 1000) errors.push(String((e as Error).message ?? e).slice(0, 200));
        }
      }
    };
    await Promise.all(Array.from({ length: opts.guests }, (_, i) => guest(i)));
    clearInterval(sampler);
    const elapsed = (performance.now() - loadStart) / 1000;
    await sampling;
    await sample();
    return { durationS: elapsed, guests: opts.guests, flows, errors, latency, memory };
  } finally {
    b.stop();
    rmSync(b.dir, { recursive: true, force: true, maxRetries: 10 });
  }
}

export function loadSection(r: LoadResult): Section {
  const rows: Row[] = [];
  rows.push({ name: "legacy SNP flows/s (auth+attest+key)", value: fmt(r.flows.legacy / r.durationS) });
  rows.push({ name: "Trustee flows/s (auth+attest+resource)", value: fmt(r.flows.trustee / r.durationS) });
  rows.push({ name: "failed flows", value: String(r.errors.length), target: "0", met: r.errors.length === 0, note: r.errors[0] });
  for (const [name, ms] of [...r.latency].sort(([a], [b]) => a.localeCompare(b))) {
    const s = [...ms].sort((a, b) => a - b);
    rows.push({ name: `${name} p50 / p99 (ms, wall)`, value: `${fmt(percentile(s, 50))} / ${fmt(percentile(s, 99))}`, note: `${s.length} requests` });
  }
  const first = r.memory[0]!;
  const last = r.memory.at(-1)!;
  const max = (f: (m: Memory) => number) => Math.max(...r.memory.map(f));
  const samples = `${r.memory.length} samples over ${fmt(r.durationS, 0)} s`;
  // Flat: once warm (the session objects alive at once, the verification caches filled, all in the first half),
  // no more growth: the end within 10% (or 1 MiB) of the first half's maximum. Workers allow an isolate 128 MB.
  const firstHalf = Math.max(...r.memory.filter((m) => m.t - first.t <= r.durationS / 2).map((m) => m.heapAfterGc));
  const flat = last.heapAfterGc - firstHalf <= Math.max(1, firstHalf * 0.1);
  rows.push({
    name: "Worker isolate JS heap after GC, start → end (max) MiB",
    value: `${fmt(first.heapAfterGc)} → ${fmt(last.heapAfterGc)} (${fmt(max((m) => m.heapAfterGc))})`,
    target: "flat, ≤ 128 MB",
    met: flat && max((m) => m.heap) * 2 ** 20 <= 128e6,
    note: `${samples}; first half's maximum ${fmt(firstHalf)}; in use before each GC up to ${fmt(max((m) => m.heap))} MiB`,
  });
  rows.push({
    name: "workerd RSS start → end (max) MiB",
    value: `${fmt(first.rss)} → ${fmt(last.rss)} (${fmt(max((m) => m.rss))})`,
    note: `${samples}; the whole local server: wrangler's proxy in front (a socket per client connection) and the runtime, with a SQLite database open per live session object and the D1 simulator's; production counts none of it against the isolate`,
  });
  return {
    title: `End to end: ${r.guests} concurrent guests for ${fmt(r.durationS, 0)} s against a local KBS (wrangler dev)`,
    method:
      "lab/local-kbs.ts starts npm start (wrangler dev, workerd) on a free port with its own state; a lab Milan chip (VCEK+ASK+ARK sent with the evidence, KDS unreachable). " +
      "Half the guests run the legacy reference-kbs SNP flow (RSA-2048 tee key, PKCS#1 v1.5 secret), half the Trustee 0.4.0 flow (EC P-256 tee key, JWE resource), each in a loop; every released secret is checked. " +
      "Latency is wall time per HTTP request seen by the guest (includes wrangler's proxy and the loopback). Memory, sampled at the start, every few seconds and at the end: the Worker isolate's JS heap (CDP Runtime.getHeapUsage usedSize, then again after HeapProfiler.collectGarbage: what the isolate retains), which is what the Workers limit of 128 MB per isolate applies to; and, second, VmRSS of the workerd process(es) in the server's process group, from /proc. " +
      "Guests run in the bench's Node process and share the machine's cores with workerd.",
    rows,
    notes: r.errors.length ? [`first errors: ${[...new Set(r.errors)].slice(0, 3).join(" | ")}`] : undefined,
  };
}

export async function measure(durationS = Number(process.env.BENCH_LOAD_SECONDS ?? 30), guests = Number(process.env.BENCH_LOAD_GUESTS ?? 8)): Promise<Section> {
  return loadSection(await runLoad({ durationS, guests, log: (s) => console.error(s) }));
}

runIfMain(import.meta.url, () => {
  const { values } = parseArgs({ options: { duration: { type: "string", default: "30" }, guests: { type: "string", default: "8" } } });
  return measure(Number(values.duration), Number(values.guests));
});
