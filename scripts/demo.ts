// `npm run demo`: the whole flow on any machine, no AMD hardware needed. It makes a lab Milan chip and a lab
// SEV platform (lab/, the synthetic AMD hardware the tests use), starts a local KBS that trusts their ARKs
// (npm start on a free port, with its own state and vars in a temporary folder), registers two workloads and
// a resource with the CLI, and runs three simulated guests through their protocols: SNP (reference-kbs, as
// libkrun's init), SNP (Trustee KBS protocol 0.4.0, as guest-components) and SEV (as libkrun's VMM and the
// PSP). Each released secret must equal what was registered. Exit 0 when all of it holds, else 1; the
// server is stopped and the folder removed however it ends.
import { execFile, type ExecFileException } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sha256, toHex, utf8 } from "../src/crypto/bytes";
import { sevChainToJson } from "../src/tee/sev/json";
import type { Build } from "../src/tee/sev/types";
import { sevArkPem } from "../src/tee/trust";
import { guestKey } from "../lab/guest";
import { certChainOf, guestClient, httpCall } from "../lab/guest-client";
import { adminToken, freePort, startLocalKbs } from "../lab/local-kbs";
import { createSyntheticChip } from "../lab/synthetic-amd";
import { createSevPlatform } from "../lab/synthetic-sev";
import { teeKeyPair } from "../lab/trustee-guest";

/** The SEV firmware build the lab platform reports (a Milan's 1.49.6); the PSP measures it into the launch. */
const SEV_BUILD: Build = { version: { major: 1, minor: 49 }, build: 6 };
const RESOURCE = "default/demo/key";

const execFileAsync = promisify(execFile);
const started = performance.now();
const dir = mkdtempSync(join(tmpdir(), "edgekbs-demo-"));
// After lab/local-kbs's own exit hook (registered on import) has stopped the server that writes here.
process.on("exit", () => rmSync(dir, { recursive: true, force: true, maxRetries: 10 }));

const heading = (text: string) => console.log(`\n${text}`);
const step = (text: string) => console.log(`  ${text}`);
const random = () => toHex(crypto.getRandomValues(new Uint8Array(8)));

function expectEqual(what: string, got: string, registered: string): void {
  if (got !== registered) throw new Error(`${what}: released ${JSON.stringify(got)}, registered ${JSON.stringify(registered)}`);
  step(`✓ ${what} equals what the operator registered`);
}

/** A file in the demo's folder, readable by this user only (it holds a secret). */
function secretFile(name: string, value: string): string {
  const path = join(dir, name);
  writeFileSync(path, value, { mode: 0o600 });
  return path;
}

async function demo(): Promise<void> {
  console.log("edgekbs demo: lab AMD hardware, a local KBS, the CLI and three simulated guests");

  heading("Lab hardware (generated now; only this run trusts it)");
  const [chip, platform, snpKey, trusteeKey] = await Promise.all([createSyntheticChip({ product: "Milan" }), createSevPlatform(), guestKey(), teeKeyPair("EC-P256")]);
  step(`SEV-SNP: a Milan chip, ARK-Milan → SEV-Milan → ${chip.signer}, CHIP_ID ${toHex(chip.chipId).slice(0, 16)}…`);
  step("SEV: a platform, ARK → ASK → CEK and OCA → PEK → PDH");

  heading("KBS");
  const port = await freePort();
  const kbs = await startLocalKbs({
    port,
    dir,
    // KDS is out of reach on purpose: every chain travels with the evidence.
    vars: { EXTRA_TRUSTED_ARKS: chip.arkPem + sevArkPem(platform.chain.ca.ark.bytes), KDS_URL: "http://127.0.0.1:9" },
  });
  step(`npm start -- --port ${port}: up at ${kbs.origin} (state, vars and log in ${dir})`);
  step("EXTRA_TRUSTED_ARKS lists the two lab ARKs; KDS_URL points nowhere");

  heading("Operator: register the workloads with the CLI");
  const cliEnv = { ...process.env, KBS_URL: kbs.origin, KBS_ADMIN_TOKEN: adminToken(kbs) };
  // Not spawnSync: a blocked event loop misses the server closing an idle keep-alive connection, and the
  // next guest request would go out on it.
  const cli = async (...args: string[]) => {
    step(`$ npm run kbs -- ${args.join(" ")}`);
    const run = await execFileAsync("npm", ["run", "--silent", "kbs", "--", ...args], { env: cliEnv }).catch((e: ExecFileException & { stdout: string; stderr: string }) => e);
    for (const line of `${run.stdout}${run.stderr}`.trimEnd().split("\n").filter(Boolean)) step(`  ${line}`);
    // Only a failure (an ExecFileException) has a code: the exit status, or the error of the spawn.
    if ("code" in run) throw new Error(`the CLI exited with ${run.code ?? run.signal}`);
  };
  const snp = { workloadId: "demo-snp", measurement: new Uint8Array(await crypto.subtle.digest("SHA-384", utf8("demo-snp guest image"))), passphrase: `snp passphrase ${random()}` };
  const sev = { workloadId: "demo-sev", digest: await sha256(utf8("demo-sev firmware+kernel+initrd+cmdline")), passphrase: `sev passphrase ${random()}` };
  const resource = `trustee resource ${random()}`;
  await cli("workload", "register", snp.workloadId, "--measurement", toHex(snp.measurement), "--passphrase-file", secretFile("snp.passphrase", snp.passphrase));
  await cli("workload", "register", sev.workloadId, "--tee", "sev", "--measurement", toHex(sev.digest), "--passphrase-file", secretFile("sev.passphrase", sev.passphrase));
  await cli("secret", "put", snp.workloadId, RESOURCE, "--file", secretFile("resource", resource));

  const guest = guestClient(httpCall(kbs.origin));

  heading(`SNP guest of ${snp.workloadId}: reference-kbs protocol, as libkrun's init`);
  const session = await guest.attestAs(chip, snpKey, snp, { certChain: certChainOf(chip), log: step });
  expectEqual("the passphrase", await guest.releasedSecret(snpKey, session, snp.workloadId, step), snp.passphrase);

  heading(`SNP guest of ${snp.workloadId}: Trustee KBS protocol 0.4.0, as Confidential Containers' guest-components`);
  const { token } = await guest.trusteeAttestAs(chip, trusteeKey, { measurement: snp.measurement }, { sendChain: true, log: step });
  expectEqual(`resource ${RESOURCE}`, await guest.trusteeResource(RESOURCE, token, trusteeKey.privateKey, step), resource);

  heading(`SEV guest of ${sev.workloadId}: reference-kbs protocol, as libkrun's VMM and the PSP`);
  const launched = await guest.sevLaunch({ chain: sevChainToJson(platform.chain), pdhPrivate: platform.pdhPrivate }, SEV_BUILD, sev.workloadId, sev.digest, step);
  expectEqual("the injected passphrase", launched, sev.passphrase);

  console.log(`\nDemo passed in ${((performance.now() - started) / 1000).toFixed(1)} s: every guest got exactly the secret registered for it.`);
}

demo().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`\nDemo FAILED: ${e instanceof Error ? e.message : String(e)}`);
    const log = join(dir, "server.log");
    if (existsSync(log)) console.error(`\nThe server's last output:\n${readFileSync(log, "utf8").trimEnd().split("\n").slice(-40).join("\n")}`);
    process.exit(1);
  },
);
