import { DurableObject } from "cloudflare:workers";
import { concat, fromHex, isHex, sha256, sha512, toHex, utf8 } from "../crypto/bytes";
import { maxPkcs1Plaintext, parseRsaPublicKey, rsaPkcs1Encrypt } from "../crypto/rsa";
import type { Env } from "../env";
import { DEFAULT_KDS_URL } from "../kds/kds";
import { audit, sessionRef } from "../audit/log";
import { SealConfigError, SealError } from "../crypto/seal";
import { masterKeys } from "../store/keyring";
import { releasableSecret } from "../store/secrets";
import { getWorkload } from "../store/workloads";
import { verifySevChain } from "../tee/sev/chain";
import { challengeExtraParams, parseSevPolicy, secretPacketJson } from "../tee/sev/json";
import { createLaunchSession, SEV_SECRET_SLOT, sealSecret, verifyLaunchMeasurement } from "../tee/sev/launch";
import { SevError, type Build, type LaunchMeasurement, type SevChain, type SevPolicy } from "../tee/sev/types";
import { appraiseSnp, assertAppraised } from "../tee/snp/appraise";
import { parseSnpPolicy, PolicyError } from "../tee/snp/policy";
import { VerificationError, type Product } from "../tee/snp/types";
import { verifySnpReport } from "../tee/snp/verify";
import { operatorTrust, type OperatorTrust } from "../tee/trust";
import { workerCertificateProvider } from "./cert-provider";
import { workerCrlSource } from "./crl-source";
import { certificatesFromChainField } from "./evidence";
import { NO_SESSION, refuse, type Outcome } from "./outcome";

export type Tee = "snp" | "sev";

/** What /auth hands the session: SNP needs only the workload; SEV also the platform chain and build. */
export type BeginInit =
  | { tee: "snp"; nonce: string; workloadId: string }
  | { tee: "sev"; nonce: string; workloadId: string; build: Build; chain: SevChain };

/** The SEV launch secrets: TEK/TIK never leave this object and go with its storage. */
interface SevRow {
  tek: ArrayBuffer;
  tik: ArrayBuffer;
  build: string;
  policy: string;
  measure: ArrayBuffer | null;
}

/** The legacy (kbs-types 0.2) tee-pubkey: base64 text exactly as the guest sent it. */
export interface TeePubKey {
  alg: string;
  kMod: string;
  kExp: string;
}

/** The legacy SNP evidence, already JSON-decoded from the `tee-evidence` string by the router. */
export interface SnpEvidence {
  report: string;
  certChain: string;
  gen: Product;
}

type State = "challenged" | "attested" | "failed";

interface SessionRow {
  nonce: string;
  workload_id: string;
  tee: Tee;
  state: State;
  /** Unix ms after which the session is gone (challenge deadline, then session deadline). */
  deadline: number;
  k_mod: string | null;
  k_exp: string | null;
  measurement: string | null;
  reported_tcb: string | null;
  chip_hash: string | null;
}

/** An outcome plus what the audit row says about it. */
interface Judged<T> {
  outcome: Outcome<T>;
  workload: string | null;
  nonce: string | null;
  tee: Tee | null;
  details?: Record<string, unknown>;
  keyId?: string;
  version?: number;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS session (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  nonce TEXT NOT NULL,
  workload_id TEXT NOT NULL,
  tee TEXT NOT NULL,
  state TEXT NOT NULL,
  deadline INTEGER NOT NULL,
  k_mod TEXT,
  k_exp TEXT,
  attested_at INTEGER,
  measurement TEXT,
  reported_tcb TEXT,
  chip_hash TEXT
);
CREATE TABLE IF NOT EXISTS sev (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  tek BLOB NOT NULL,
  tik BLOB NOT NULL,
  build TEXT NOT NULL,
  policy TEXT NOT NULL,
  measure BLOB
)`;

/** Registered launch digests: SEV's LAUNCH_MEASURE input is 32 bytes, SNP's MEASUREMENT 48 (hex lengths). */
const MEASUREMENT_HEX: Record<Tee, number> = { sev: 64, snp: 96 };
const SNP_REPORT_BYTES = 1184;

function seconds(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

let trustCache: { source: string; anchors: Promise<OperatorTrust> } | undefined;
/** Trust anchors are derived once per isolate (and again only if the operator's variable changes). */
function anchorsFor(extraArks: string | undefined): Promise<OperatorTrust> {
  const source = extraArks ?? "";
  if (trustCache?.source !== source) trustCache = { source, anchors: operatorTrust(source) };
  return trustCache.anchors;
}

/**
 * One attestation session: challenged → attested (or failed), then gone. It holds the nonce, the
 * attested public key and its deadlines; expiry is checked on every call and enforced by one alarm
 * that deletes all storage.
 */
export class AttestationSession extends DurableObject<Env> {
  private schemaReady = false;

  private sql(): SqlStorage {
    if (!this.schemaReady) {
      this.ctx.storage.sql.exec(SCHEMA);
      this.schemaReady = true;
    }
    return this.ctx.storage.sql;
  }

  /** The live session, or null when there is none or it expired (which also wipes it). */
  private async current(now = Date.now()): Promise<SessionRow | null> {
    // A cookie naming no session (forged, stale, random) must not make this object create storage.
    if (!this.schemaReady) {
      if (this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'session'").toArray().length === 0) return null;
      this.schemaReady = true;
    }
    const row = this.sql().exec<SessionRow & Record<string, SqlStorageValue>>("SELECT nonce, workload_id, tee, state, deadline, k_mod, k_exp, measurement, reported_tcb, chip_hash FROM session").toArray()[0];
    if (!row) return null;
    if (now >= row.deadline) {
      await this.wipe();
      return null;
    }
    return row;
  }

  private async wipe(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    // deleteAll also drops the table; recreate it lazily if this instance is reused.
    await this.ctx.storage.deleteAll();
    this.schemaReady = false;
  }

  /** POST /auth: check the workload can attest with this TEE, then issue the challenge (SEV: the launch blob). */
  async begin(init: BeginInit): Promise<Outcome<{ extraParams: string }>> {
    return this.recorded("auth", { outcome: await this.open(init), workload: init.workloadId, nonce: init.nonce, tee: init.tee });
  }

  private async open(init: BeginInit): Promise<Outcome<{ extraParams: string }>> {
    if (await this.current()) return refuse(409, "session-exists", "session id collision; retry /auth");
    const workload = await getWorkload(this.env.DB, init.workloadId);
    if (!workload) return refuse(400, "workload-unknown", `workload "${init.workloadId}" is not registered or has no tee_config`);
    if (workload.launchMeasurement.length !== MEASUREMENT_HEX[init.tee]) {
      const registered = workload.launchMeasurement.length === MEASUREMENT_HEX.sev ? "sev" : "snp";
      return refuse(400, "workload-tee-mismatch", `workload "${init.workloadId}" is registered for ${registered} (launch_measurement length), not ${init.tee}`);
    }
    let extraParams = "";
    if (init.tee === "sev") {
      const launch = await this.launchSev(init, workload.teeConfig);
      if (!launch.ok) return launch;
      extraParams = launch.extraParams;
    }
    const deadline = Date.now() + seconds(this.env.CHALLENGE_TTL_SECONDS, 300) * 1000;
    this.sql().exec(
      "INSERT INTO session (one, nonce, workload_id, tee, state, deadline) VALUES (1, ?, ?, ?, 'challenged', ?)",
      init.nonce,
      init.workloadId,
      init.tee,
      deadline,
    );
    await this.ctx.storage.setAlarm(deadline);
    return { ok: true, extraParams };
  }

  /** SEV: verify the platform chain to AMD, then wrap fresh transport keys to its PDH. */
  private async launchSev(init: Extract<BeginInit, { tee: "sev" }>, teeConfig: string): Promise<Outcome<{ extraParams: string }>> {
    try {
      const policy = parseSevPolicy(teeConfig);
      const { pdh } = await verifySevChain(init.chain, (await anchorsFor(this.env.EXTRA_TRUSTED_ARKS)).sev);
      const { start, keys } = await createLaunchSession(pdh, policy);
      this.sql().exec(
        "INSERT INTO sev (one, tek, tik, build, policy) VALUES (1, ?, ?, ?, ?)",
        keys.tek,
        keys.tik,
        JSON.stringify(init.build),
        JSON.stringify(policy),
      );
      return { ok: true, extraParams: challengeExtraParams(init.nonce, start) };
    } catch (e) {
      if (!(e instanceof SevError)) throw e;
      return refuse(400, `sev-${e.code}`, e.message);
    }
  }

  /** POST /attest with SEV evidence: the LAUNCH_MEASURE HMAC must cover the registered digest. */
  async attestSev(measurement: LaunchMeasurement): Promise<Outcome> {
    return this.recorded("attest", await this.judgeSev(measurement));
  }

  private async judgeSev(measurement: LaunchMeasurement): Promise<Judged<object>> {
    const checked = await this.challenged("sev");
    if (!checked.ok) return checked.judged;
    const { row } = checked;
    const sev = this.sql().exec<SevRow & Record<string, SqlStorageValue>>("SELECT tek, tik, build, policy FROM sev").toArray()[0];
    const workload = await getWorkload(this.env.DB, row.workload_id);
    const judged = (outcome: Outcome, details: Record<string, unknown> = {}): Judged<object> => ({ outcome, workload: row.workload_id, nonce: row.nonce, tee: "sev", details });
    if (!sev || !workload) {
      this.sql().exec("UPDATE session SET state = 'failed'");
      return judged(refuse(400, "workload-unknown", `workload "${row.workload_id}" is no longer registered`));
    }
    try {
      const keys = { tek: new Uint8Array(sev.tek), tik: new Uint8Array(sev.tik) };
      await verifyLaunchMeasurement(keys, JSON.parse(sev.build) as Build, JSON.parse(sev.policy) as SevPolicy, fromHex(workload.launchMeasurement), measurement);
    } catch (e) {
      if (!(e instanceof SevError)) throw e;
      this.sql().exec("UPDATE session SET state = 'failed'");
      return judged(refuse(400, `sev-${e.code}`, e.message));
    }
    const now = Date.now();
    const deadline = now + seconds(this.env.SESSION_TTL_SECONDS, 10800) * 1000;
    this.sql().exec("UPDATE session SET state = 'attested', deadline = ?, attested_at = ?, measurement = ?", deadline, now, workload.launchMeasurement);
    this.sql().exec("UPDATE sev SET measure = ?", measurement.measure);
    await this.ctx.storage.setAlarm(deadline);
    return judged({ ok: true }, { measurement: workload.launchMeasurement });
  }

  /** The live challenged session for this TEE; evidence of the other TEE burns the nonce. */
  private async challenged(tee: Tee, now = Date.now()): Promise<{ ok: true; row: SessionRow } | { ok: false; judged: Judged<object> }> {
    const row = await this.current(now);
    const no = (outcome: Outcome) => ({ ok: false as const, judged: { outcome, workload: row?.workload_id ?? null, nonce: row?.nonce ?? null, tee } });
    if (!row || row.state === "failed") return no(NO_SESSION);
    if (row.state === "attested") return no(refuse(409, "already-attested", "this session is already attested; start a new one with /auth"));
    if (row.tee !== tee) {
      this.sql().exec("UPDATE session SET state = 'failed'");
      return no(refuse(400, "evidence-tee-mismatch", `this session was opened for ${row.tee} but the evidence is ${tee}`));
    }
    return { ok: true, row };
  }

  /** POST /attest with SNP evidence: verify, appraise, and on success open the session for secrets. */
  async attestSnp(pubkey: TeePubKey, evidence: SnpEvidence): Promise<Outcome> {
    return this.recorded("attest", await this.judgeSnp(pubkey, evidence));
  }

  private async judgeSnp(pubkey: TeePubKey, evidence: SnpEvidence): Promise<Judged<object>> {
    const now = new Date();
    const checked = await this.challenged("snp", now.getTime());
    if (!checked.ok) return checked.judged;
    const { row } = checked;
    const judged = (outcome: Outcome, details: Record<string, unknown> = {}): Judged<object> => ({ outcome, workload: row.workload_id, nonce: row.nonce, tee: "snp", details });

    const result = await this.verifySnp(row, pubkey, evidence, now);
    if (!result.ok) {
      // An upstream outage leaves the challenge usable for a retry; any other failure burns the nonce.
      if (result.refusal.status !== 503) this.sql().exec("UPDATE session SET state = 'failed'");
      return judged(result);
    }
    const deadline = now.getTime() + seconds(this.env.SESSION_TTL_SECONDS, 10800) * 1000;
    this.sql().exec(
      "UPDATE session SET state = 'attested', deadline = ?, k_mod = ?, k_exp = ?, attested_at = ?, measurement = ?, reported_tcb = ?, chip_hash = ?",
      deadline,
      pubkey.kMod,
      pubkey.kExp,
      now.getTime(),
      result.measurement,
      result.reportedTcb,
      result.chipHash,
    );
    await this.ctx.storage.setAlarm(deadline);
    return judged({ ok: true }, { measurement: result.measurement, reported_tcb: result.reportedTcb, chip_id_sha256: result.chipHash, revocation: result.revocation });
  }

  private async verifySnp(row: SessionRow, pubkey: TeePubKey, evidence: SnpEvidence, now: Date): Promise<Outcome<{ measurement: string; reportedTcb: string; chipHash: string; revocation: string }>> {
    try {
      parseRsaPublicKey(pubkey.kMod, pubkey.kExp);
    } catch (e) {
      return refuse(400, "tee-pubkey-invalid", (e as Error).message);
    }
    const report = evidence.report.length === SNP_REPORT_BYTES * 2 && isHex(evidence.report) ? fromHex(evidence.report) : null;
    if (!report) return refuse(400, "evidence-malformed", `report must be ${SNP_REPORT_BYTES * 2} hex characters (${SNP_REPORT_BYTES} bytes)`);
    let certificates: Uint8Array[];
    try {
      certificates = certificatesFromChainField(evidence.certChain);
    } catch (e) {
      return refuse(400, "evidence-malformed", e instanceof TypeError ? e.message : "cert_chain could not be parsed");
    }
    const workload = await getWorkload(this.env.DB, row.workload_id);
    if (!workload) return refuse(400, "workload-unknown", `workload "${row.workload_id}" is no longer registered`);

    let policy;
    try {
      policy = parseSnpPolicy(workload.teeConfig);
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      return refuse(400, "tee-config-invalid", `the workload's SNP policy is invalid: ${e.message}`.slice(0, 180));
    }
    const kdsUrl = this.env.KDS_URL || DEFAULT_KDS_URL;
    try {
      const verified = await verifySnpReport(report, {
        trust: (await anchorsFor(this.env.EXTRA_TRUSTED_ARKS)).snp,
        productHint: evidence.gen,
        certificates,
        provider: workerCertificateProvider(this.env.DB, kdsUrl, now),
        revocation: { source: workerCrlSource(this.env.DB, kdsUrl, now), mode: this.env.CRL_MODE === "strict" ? "strict" : "best-effort" },
        now,
      });
      // reference-kbs binding: SHA-512 over the nonce and the base64 texts exactly as sent.
      const reportData = await sha512(concat(utf8(row.nonce), utf8(pubkey.kMod), utf8(pubkey.kExp)));
      assertAppraised(appraiseSnp(verified, { measurement: fromHex(workload.launchMeasurement), reportData }, policy));
      const chipHash = toHex(await sha256(verified.report.chipId));
      return { ok: true, measurement: toHex(verified.report.measurement), reportedTcb: verified.reportedTcb.raw, chipHash, revocation: verified.revocation.status };
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      // Transient upstream problems keep the challenge usable; everything else is the evidence's fault.
      if (e.code === "certs-unavailable" || e.code === "crl-unavailable") return refuse(503, e.code, e.message, { retryAfter: e.extra.retryAfter ?? 60 });
      return refuse(400, `snp-${e.code}`, e.message, e.extra.rules ? { rules: e.extra.rules } : {});
    }
  }

  /** GET /key/:key_id: a secret of this session's own workload (newest live version), sealed to the attested guest. */
  async releaseSecret(keyId: string): Promise<Outcome<{ body: string }>> {
    const row = await this.current();
    if (!row || row.state !== "attested") return this.recorded("secret.release", { outcome: NO_SESSION, workload: row?.workload_id ?? null, nonce: row?.nonce ?? null, tee: row?.tee ?? null, keyId });
    const judged = (outcome: Outcome<{ body: string }>, version?: number): Judged<{ body: string }> => ({
      outcome,
      workload: row.workload_id,
      nonce: row.nonce,
      tee: row.tee,
      keyId,
      ...(version !== undefined && { version }),
      details: { measurement: row.measurement, reported_tcb: row.reported_tcb, chip_id_sha256: row.chip_hash },
    });
    let secret: { version: number; value: Uint8Array } | null;
    try {
      // Key ids are looked up within the session's own workload only: another workload's keys are unreachable.
      secret = await releasableSecret(this.env.DB, await masterKeys(this.env.KBS_MASTER_KEY), row.workload_id, keyId);
    } catch (e) {
      if (e instanceof SealConfigError) return this.recorded("secret.release", judged(refuse(503, "kbs-misconfigured", "the KBS master key is not configured; tell the operator")));
      if (e instanceof SealError) return this.recorded("secret.release", judged(refuse(503, "secret-unavailable", "the stored secret does not authenticate; tell the operator")));
      throw e;
    }
    if (secret === null) return this.recorded("secret.release", judged(refuse(401, "key-not-authorized", "this session's workload has no such key")));
    const sealed = row.tee === "sev" ? await this.sealSev(secret.value) : await this.sealSnp(row, secret.value);
    secret.value.fill(0);
    return this.recorded("secret.release", judged(sealed, secret.version));
  }

  /** Logs one line and appends the audit row; an outcome is returned only once its row is written. */
  private async recorded<T>(event: string, j: Judged<T>): Promise<Outcome<T>> {
    const ok = j.outcome.ok;
    const reason = j.outcome.ok ? null : j.outcome.refusal.code;
    log({ event, tee: j.tee, workload: j.workload, key_id: j.keyId, version: j.version, ok, code: reason, ...j.details });
    await audit(this.env, {
      actor: "guest",
      event,
      workload: j.workload,
      keyId: j.keyId ?? null,
      version: j.version ?? null,
      session: j.nonce ? await sessionRef(j.nonce) : null,
      ok,
      reason,
      details: { ...(j.tee && { tee: j.tee }), ...j.details },
    });
    return j.outcome;
  }

  /** SNP: PKCS#1 v1.5 to the guest's attested RSA key, as the JSON string `"<hex>"`. */
  private async sealSnp(row: SessionRow, plaintext: Uint8Array): Promise<Outcome<{ body: string }>> {
    if (row.k_mod === null || row.k_exp === null) return NO_SESSION;
    const key = parseRsaPublicKey(row.k_mod, row.k_exp);
    if (plaintext.length > maxPkcs1Plaintext(key)) {
      return refuse(400, "secret-too-long", `the secret does not fit RSA-${key.bits} PKCS#1 v1.5 (max ${maxPkcs1Plaintext(key)} bytes)`);
    }
    return { ok: true, body: `"${toHex(await rsaPkcs1Encrypt(key, plaintext))}"` };
  }

  /** SEV: the LAUNCH_SECRET packet under TEK/TIK, bound to this launch's measure. */
  private async sealSev(plaintext: Uint8Array): Promise<Outcome<{ body: string }>> {
    const sev = this.sql().exec<SevRow & Record<string, SqlStorageValue>>("SELECT tek, tik, measure FROM sev").toArray()[0];
    if (!sev?.measure) return NO_SESSION;
    // Registration caps secrets at the slot size; a row written before that cap must not crash here.
    if (plaintext.length > SEV_SECRET_SLOT) return refuse(400, "secret-too-long", `SEV secrets must fit the ${SEV_SECRET_SLOT}-byte LAUNCH_SECRET slot`);
    const packet = await sealSecret({ tek: new Uint8Array(sev.tek), tik: new Uint8Array(sev.tik) }, new Uint8Array(sev.measure), plaintext);
    return { ok: true, body: secretPacketJson(packet) };
  }

  override async alarm(): Promise<void> {
    // current() wipes an expired session; one whose deadline moved on (attested) keeps living.
    const row = await this.current();
    if (row) await this.ctx.storage.setAlarm(row.deadline);
  }
}

/** One JSON line per event; never evidence, keys, tokens or secrets. */
function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields));
}
