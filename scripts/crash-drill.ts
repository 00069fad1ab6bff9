// Crash drill: `npm start` under mixed load (registrations, secret rotations, full SNP guest flows), killed
// with SIGKILL (the whole process tree, workerd included) at a random moment, restarted, and checked:
// registration works, a full guest flow works, every acknowledged write is present with its audit row,
// and `kbs audit verify` passes. Repeated for --rounds. Local only: traffic goes to 127.0.0.1. The server's
// state, vars file and output are in .wrangler/drill, made afresh each run; .dev.vars is left alone.
//
//   npm run drill -- [--rounds 5] [--port 8797]
import { mkdirSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { verifyAuditLog } from "../src/audit/client";
import { toHex, utf8 } from "../src/crypto/bytes";
import { guestKey, type GuestKey } from "../lab/guest";
import { certChainOf, guestClient, httpCall } from "../lab/guest-client";
import { adminToken, startLocalKbs, stopLocalKbs, type LocalKbs } from "../lab/local-kbs";
import { createSyntheticChip, type SyntheticChip } from "../lab/synthetic-amd";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" }, port: { type: "string", default: "8797" } } });
const ROUNDS = Number(values.rounds);
const BASE = `http://127.0.0.1:${values.port}`;
const DIR = ".wrangler/drill";
const WORKERS = 6;

interface Acknowledged {
  /** workload id → every secret value acknowledged (by version) under key_id = workload id. */
  versions: Map<string, Map<number, string>>;
  /** workload id → how many releases were acknowledged. */
  releases: Map<string, number>;
}

let token = "";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const measurementOf = (id: string) => utf8(id.padEnd(48, "#")).subarray(0, 48);

/** npm start on the drill's own state; KDS out of reach, the chip's ARK listed. */
const start = (chip: SyntheticChip): Promise<LocalKbs> =>
  startLocalKbs({ port: Number(values.port), dir: DIR, vars: { EXTRA_TRUSTED_ARKS: chip.arkPem, KDS_URL: "http://127.0.0.1:9" } });

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${BASE}/kbs/v0${path}`, { ...init, signal: AbortSignal.timeout(15_000), headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });

async function register(id: string, passphrase: string): Promise<Response> {
  return admin("/register_workload", { method: "POST", body: JSON.stringify({ workload_id: id, launch_measurement: toHex(measurementOf(id)), tee_config: "", passphrase }) });
}

const guest = guestClient(httpCall(BASE));

/** auth → attest → key as libkrun's guest, the whole chain in cert_chain (no KDS); returns the secret. */
async function guestFlow(chip: SyntheticChip, key: GuestKey, id: string): Promise<string> {
  const session = await guest.attestAs(chip, key, { workloadId: id, measurement: measurementOf(id) }, { certChain: certChainOf(chip) });
  return guest.releasedSecret(key, session, id);
}

/**
 * workload id → every value written to it, answered or not. A guest may get one whose answer is still on its
 * way to another worker (or was lost to the kill): only a value never written is a wrong release.
 */
const written = new Map<string, Set<string>>();

/** Mixed load until stopped; records only what the server acknowledged. */
async function load(chip: SyntheticChip, key: GuestKey, ack: Acknowledged, round: number, stop: { now: boolean }): Promise<void> {
  let n = 0;
  const worker = async (w: number) => {
    while (!stop.now) {
      const known = [...ack.versions.keys()];
      const pick = Math.random();
      try {
        if (pick < 0.3 || known.length === 0) {
          const id = `drill-${round}-${w}-${n++}`;
          const value = `v1-${id}`;
          written.set(id, new Set([value]));
          if ((await register(id, value)).status === 200) ack.versions.set(id, new Map([[1, value]]));
        } else if (pick < 0.5) {
          const id = known[Math.floor(Math.random() * known.length)]!;
          const value = `rotated-${Date.now()}-${Math.random()}`;
          written.get(id)!.add(value);
          const res = await admin(`/admin/workloads/${id}/secrets/${id}`, { method: "PUT", body: JSON.stringify({ value }) });
          if (res.status === 201) ack.versions.get(id)!.set(((await res.json()) as { version: number }).version, value);
        } else {
          const id = known[Math.floor(Math.random() * known.length)]!;
          const secret = await guestFlow(chip, key, id);
          if (!written.get(id)!.has(secret)) throw new Error(`released an unknown secret for ${id}`);
          ack.releases.set(id, (ack.releases.get(id) ?? 0) + 1);
        }
      } catch (e) {
        // Connection errors are expected once the server is killed; a wrong secret is not.
        if (String(e).includes("unknown secret")) throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
}

interface AuditRow {
  shard: string;
  event: string;
  workload: string | null;
  version: number | null;
  ok: boolean;
}

async function auditRows(): Promise<AuditRow[]> {
  const rows: AuditRow[] = [];
  for (let cursor = { after_shard: "", after_seq: 0 }; ; ) {
    const page = (await (await admin(`/admin/audit?after_shard=${encodeURIComponent(cursor.after_shard)}&after_seq=${cursor.after_seq}&limit=1000`)).json()) as { entries: AuditRow[]; next: typeof cursor | null };
    rows.push(...page.entries);
    if (!page.next) return rows;
    cursor = page.next;
  }
}

async function check(chip: SyntheticChip, key: GuestKey, ack: Acknowledged, round: number): Promise<string[]> {
  const problems: string[] = [];
  const fresh = `drill-${round}-after`;
  written.set(fresh, new Set(["after-restart"]));
  if ((await register(fresh, "after-restart")).status !== 200) problems.push("registration after restart failed");
  else ack.versions.set(fresh, new Map([[1, "after-restart"]]));
  try {
    if ((await guestFlow(chip, key, fresh)) !== "after-restart") problems.push("guest flow after restart released the wrong secret");
    ack.releases.set(fresh, (ack.releases.get(fresh) ?? 0) + 1);
  } catch (e) {
    problems.push(`guest flow after restart failed: ${String(e)}`);
  }
  for (const [id, versions] of ack.versions) {
    const res = await admin(`/admin/workloads/${id}`);
    if (res.status !== 200) {
      problems.push(`acknowledged workload ${id} is missing (${res.status})`);
      continue;
    }
    const stored = new Set(((await res.json()) as { secrets: { key_id: string; version: number }[] }).secrets.filter((s) => s.key_id === id).map((s) => s.version));
    for (const v of versions.keys()) if (!stored.has(v)) problems.push(`acknowledged version ${v} of ${id} is missing`);
  }
  // Session shards reach D1 by their objects' alarms (1 s after the last row, again after a restart).
  for (let attempt = 0; ; attempt++) {
    const rows = await auditRows();
    const missing: string[] = [];
    for (const [id, versions] of ack.versions) {
      const audited = new Set(rows.filter((r) => r.shard === `admin/${id}` && (r.event === "workload.register" || r.event === "secret.update")).map((r) => r.version));
      for (const v of versions.keys()) if (!audited.has(v)) missing.push(`no audit row for version ${v} of ${id}`);
    }
    for (const [id, n] of ack.releases) {
      const audited = rows.filter((r) => r.workload === id && r.event === "secret.release" && r.ok).length;
      if (audited < n) missing.push(`${n} releases of ${id} acknowledged, ${audited} audited`);
    }
    if (missing.length === 0) break;
    if (attempt === 20) {
      problems.push(...missing);
      break;
    }
    await sleep(1000);
  }
  const verdict = await verifyAuditLog(fetch, BASE, token);
  if (!verdict.ok) problems.push(`audit verify: ${JSON.stringify(verdict)}`);
  return problems;
}

async function main(): Promise<number> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const chip = await createSyntheticChip({ product: "Milan" });
  const key = await guestKey();
  const ack: Acknowledged = { versions: new Map(), releases: new Map() };
  let server = await start(chip);
  token = adminToken(server);
  let failures = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const stop = { now: false };
    const running = load(chip, key, ack, round, stop);
    const killAfter = 1000 + Math.random() * 4000;
    await sleep(killAfter);
    // The whole tree: npm start's node, wrangler and workerd, as a power cut would.
    stopLocalKbs(server);
    stop.now = true;
    await running;
    server = await start(chip);
    const problems = await check(chip, key, ack, round);
    const releases = [...ack.releases.values()].reduce((a, b) => a + b, 0);
    const versions = [...ack.versions.values()].reduce((a, m) => a + m.size, 0);
    console.log(JSON.stringify({ round, killed_after_ms: Math.round(killAfter), acknowledged: { workloads: ack.versions.size, versions, releases }, ok: problems.length === 0, problems }));
    if (problems.length) failures++;
  }
  stopLocalKbs(server);
  console.log(`${ROUNDS - failures} passed, ${failures} failed`);
  return failures ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
