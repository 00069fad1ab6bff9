import { DurableObject } from "cloudflare:workers";
import { concat, fromHex, isHex, sha256, sha512, toHex, utf8 } from "../crypto/bytes";
import { maxPkcs1Plaintext, parseRsaPublicKey, rsaPkcs1Encrypt } from "../crypto/rsa";
import type { Env } from "../env";
import { DEFAULT_KDS_URL } from "../kds/kds";
import type { AuditHead } from "../audit/chain";
import { appendToOutbox, exportOutbox, hasUnexported, OUTBOX_SCHEMA, sessionRef } from "../audit/outbox";
import { witness } from "../audit/witness";
import { SealConfigError, SealError } from "../crypto/seal";
import { faultPoint } from "../faults";
import { masterKeys } from "../store/keyring";
import { releasableSecret, type Releasable } from "../store/secrets";
import { getWorkload, type LiveWorkload } from "../store/workloads";
import { verifySevChain } from "../tee/sev/chain";
import { challengeExtraParams, parseSevPolicy, secretPacketJson } from "../tee/sev/json";
import { createLaunchSession, SEV_SECRET_SLOT, sealSecret, verifyLaunchMeasurement } from "../tee/sev/launch";
import { SevError, type Build, type LaunchMeasurement, type SevChain, type SevPolicy } from "../tee/sev/types";
import { appraiseSnp, assertAppraised } from "../tee/snp/appraise";
import { parseSnpPolicy, PolicyError } from "../tee/snp/policy";
import { VerificationError, type Product } from "../tee/snp/types";
import { verifySnpReport } from "../tee/snp/verify";
import { operatorTrust, type OperatorTrust } from "../tee/trust";
import { cacheDb } from "./cache-db";
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
  /** The workload generation the session attested under; /key refuses once the workload moved on. */
  generation: number | null;
  /** D1 read-replica bookmark: later reads of this session never see older data than earlier ones. */
  bookmark: string | null;
}

/**
 * An outcome, the state writes that go with it and what its audit row says. The writes and the row are
 * committed in one storage transaction: neither exists without the other.
 */
interface Judged<T> {
  outcome: Outcome<T>;
  workload: string;
  nonce: string;
  tee: Tee;
  writes?: () => void;
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
  chip_hash TEXT,
  generation INTEGER,
  bookmark TEXT
);
CREATE TABLE IF NOT EXISTS sev (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  tek BLOB NOT NULL,
  tik BLOB NOT NULL,
  build TEXT NOT NULL,
  policy TEXT NOT NULL,
  measure BLOB
);
${OUTBOX_SCHEMA}`;

/** Registered launch digests: SEV's LAUNCH_MEASURE input is 32 bytes, SNP's MEASUREMENT 48 (hex lengths). */
const MEASUREMENT_HEX: Record<Tee, number> = { sev: 64, snp: 96 };
const SNP_REPORT_BYTES = 1184;
/** After a failed audit export, the next try (the alarm's own retries back off too fast for an outage). */
const EXPORT_RETRY_MS = 30_000;
/** Rows wait this long for export, so a whole auth → attest → key flow usually goes out in one D1 batch. */
const EXPORT_DELAY_MS = 1_000;

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
 * attested public key and its deadlines, and its own shard of the audit log: every state change commits
 * together with its audit row, and the alarm exports the rows to D1 off the request path. Expiry is
 * checked on every call and enforced by the alarm, which deletes all storage once the rows are exported.
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

  /** False for an object that never held a session: a forged or stale cookie must not create storage. */
  private hasStorage(): boolean {
    if (!this.schemaReady && this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'session'").toArray().length === 0) return false;
    this.schemaReady = true;
    return true;
  }

  private shard(): string {
    return `session/${this.ctx.id.toString()}`;
  }

  /** The live session, or null when there is none or it expired (which also ends it). */
  private async current(now = Date.now()): Promise<SessionRow | null> {
    if (!this.hasStorage()) return null;
    const row = this.sql().exec<SessionRow & Record<string, SqlStorageValue>>("SELECT nonce, workload_id, tee, state, deadline, k_mod, k_exp, measurement, reported_tcb, chip_hash, generation, bookmark FROM session").toArray()[0];
    if (!row) return null;
    if (now >= row.deadline) {
      // Keys and state go now; the audit rows stay until the alarm has exported them. The alarm is set in
      // the same transaction: no kill in between can leave rows without an alarm to export them.
      this.ctx.storage.transactionSync(() => {
        this.sql().exec("DELETE FROM session; DELETE FROM sev");
        void this.ctx.storage.setAlarm(now);
      });
      return null;
    }
    return row;
  }

  /** Commits the state writes and the audit row in one transaction, then has the alarm export the row. */
  private commit<T>(event: string, j: Judged<T>): Outcome<T> {
    const ok = j.outcome.ok;
    const reason = j.outcome.ok ? null : j.outcome.refusal.code;
    log({ event, tee: j.tee, workload: j.workload, key_id: j.keyId, version: j.version, ok, code: reason, ...j.details });
    // The row is durable before the answer leaves; the export alarm is set in the same transaction, so
    // every row has an alarm to take it to D1, off the request path. A later flow step moves it on a little,
    // so a whole auth → attest → key flow usually goes out in one batch.
    this.ctx.storage.transactionSync(() => {
      void this.ctx.storage.setAlarm(Date.now() + EXPORT_DELAY_MS);
      j.writes?.();
      faultPoint("session.before-audit");
      appendToOutbox(this.sql(), {
        shard: this.shard(),
        at: Date.now(),
        actor: "guest",
        event,
        workload: j.workload,
        keyId: j.keyId ?? null,
        version: j.version ?? null,
        session: sessionRef(j.nonce),
        ok,
        reason,
        details: { tee: j.tee, ...j.details },
      });
    });
    return j.outcome;
  }

  /** A call that found no live session: logged, never stored (see INVALID_SESSIONS_PER_IP). */
  private static noSession<T>(event: string): Outcome<T> {
    log({ event, ok: false, code: NO_SESSION.refusal.code });
    return NO_SESSION;
  }

  /** Copies this shard's unexported audit rows to D1 and tells the witness; safe to repeat. */
  async exportAudit(): Promise<AuditHead | null> {
    if (!this.hasStorage()) return null;
    const head = await exportOutbox(this.sql(), this.env.DB);
    if (head) {
      faultPoint("session.before-witness");
      await witness(this.env, this.shard(), head);
    }
    return head;
  }

  /** A D1 read-replica session that continues from this session's last read. */
  private replica(row: Pick<SessionRow, "bookmark"> | null): D1DatabaseSession {
    return this.env.DB.withSession(row?.bookmark ?? "first-unconstrained");
  }

  /** POST /auth: check the workload can attest with this TEE, then issue the challenge (SEV: the launch blob). */
  async begin(init: BeginInit): Promise<Outcome<{ extraParams: string }>> {
    if (await this.current()) return refuse(409, "session-exists", "session id collision; retry /auth");
    return this.commit("auth", await this.open(init));
  }

  private async open(init: BeginInit): Promise<Judged<{ extraParams: string }>> {
    const judged = (outcome: Outcome<{ extraParams: string }>, writes?: () => void): Judged<{ extraParams: string }> => ({ outcome, workload: init.workloadId, nonce: init.nonce, tee: init.tee, ...(writes && { writes }) });
    const db = this.replica(null);
    const workload = await getWorkload(db, init.workloadId);
    if (!workload) return judged(refuse(400, "workload-unknown", `workload "${init.workloadId}" is not registered or has no tee_config`));
    if (workload.launchMeasurement.length !== MEASUREMENT_HEX[init.tee]) {
      const registered = workload.launchMeasurement.length === MEASUREMENT_HEX.sev ? "sev" : "snp";
      return judged(refuse(400, "workload-tee-mismatch", `workload "${init.workloadId}" is registered for ${registered}, not ${init.tee}`));
    }
    let extraParams = "";
    let sevWrites: (() => void) | undefined;
    if (init.tee === "sev") {
      const launch = await this.launchSev(init, workload.teeConfig);
      if (!launch.ok) return judged(launch);
      extraParams = launch.extraParams;
      sevWrites = launch.writes;
    }
    const deadline = Date.now() + seconds(this.env.CHALLENGE_TTL_SECONDS, 300) * 1000;
    const bookmark = db.getBookmark();
    return judged({ ok: true, extraParams }, () => {
      this.sql().exec(
        "INSERT INTO session (one, nonce, workload_id, tee, state, deadline, bookmark) VALUES (1, ?, ?, ?, 'challenged', ?, ?)",
        init.nonce,
        init.workloadId,
        init.tee,
        deadline,
        bookmark,
      );
      sevWrites?.();
    });
  }

  /** SEV: verify the platform chain to AMD, then wrap fresh transport keys to its PDH. */
  private async launchSev(init: Extract<BeginInit, { tee: "sev" }>, teeConfig: string): Promise<Outcome<{ extraParams: string; writes: () => void }>> {
    try {
      const policy = parseSevPolicy(teeConfig);
      const { pdh } = await verifySevChain(init.chain, (await anchorsFor(this.env.EXTRA_TRUSTED_ARKS)).sev);
      const { start, keys } = await createLaunchSession(pdh, policy);
      const writes = () =>
        this.sql().exec("INSERT INTO sev (one, tek, tik, build, policy) VALUES (1, ?, ?, ?, ?)", keys.tek, keys.tik, JSON.stringify(init.build), JSON.stringify(policy));
      return { ok: true, extraParams: challengeExtraParams(init.nonce, start), writes };
    } catch (e) {
      if (!(e instanceof SevError)) throw e;
      return refuse(400, `sev-${e.code}`, e.message);
    }
  }

  /** POST /attest with SEV evidence: the LAUNCH_MEASURE HMAC must cover the registered digest. */
  async attestSev(measurement: LaunchMeasurement): Promise<Outcome> {
    const checked = await this.challenged("sev");
    if (!checked.ok) return checked.outcome;
    return this.commit("attest", await this.judgeSev(checked.row, measurement));
  }

  private async judgeSev(row: SessionRow, measurement: LaunchMeasurement): Promise<Judged<object>> {
    const sev = this.sql().exec<SevRow & Record<string, SqlStorageValue>>("SELECT tek, tik, build, policy FROM sev").toArray()[0];
    const db = this.replica(row);
    const workload = await getWorkload(db, row.workload_id);
    const judged = (outcome: Outcome, writes: () => void, details: Record<string, unknown> = {}): Judged<object> => ({ outcome, workload: row.workload_id, nonce: row.nonce, tee: "sev", writes, details });
    const burn = () => this.sql().exec("UPDATE session SET state = 'failed'");
    if (!sev || !workload) return judged(refuse(400, "workload-unknown", `workload "${row.workload_id}" is no longer registered`), burn);
    try {
      const keys = { tek: new Uint8Array(sev.tek), tik: new Uint8Array(sev.tik) };
      await verifyLaunchMeasurement(keys, JSON.parse(sev.build) as Build, JSON.parse(sev.policy) as SevPolicy, fromHex(workload.launchMeasurement), measurement);
    } catch (e) {
      if (!(e instanceof SevError)) throw e;
      return judged(refuse(400, `sev-${e.code}`, e.message), burn);
    }
    const now = Date.now();
    const deadline = now + seconds(this.env.SESSION_TTL_SECONDS, 10800) * 1000;
    const bookmark = db.getBookmark();
    return judged(
      { ok: true },
      () => {
        this.sql().exec("UPDATE session SET state = 'attested', deadline = ?, attested_at = ?, measurement = ?, generation = ?, bookmark = ?", deadline, now, workload.launchMeasurement, workload.generation, bookmark);
        this.sql().exec("UPDATE sev SET measure = ?", measurement.measure);
      },
      { measurement: workload.launchMeasurement },
    );
  }

  /** The live challenged session for this TEE; evidence of the other TEE burns the nonce. */
  private async challenged(tee: Tee, now = Date.now()): Promise<{ ok: true; row: SessionRow } | { ok: false; outcome: Outcome }> {
    const row = await this.current(now);
    if (!row || row.state === "failed") return { ok: false, outcome: AttestationSession.noSession("attest") };
    const no = async (outcome: Outcome, writes?: () => void) => ({ ok: false as const, outcome: await this.commit("attest", { outcome, workload: row.workload_id, nonce: row.nonce, tee, ...(writes && { writes }) }) });
    if (row.state === "attested") return no(refuse(409, "already-attested", "this session is already attested; start a new one with /auth"));
    if (row.tee !== tee) return no(refuse(400, "evidence-tee-mismatch", `this session was opened for ${row.tee} but the evidence is ${tee}`), () => this.sql().exec("UPDATE session SET state = 'failed'"));
    return { ok: true, row };
  }

  /** POST /attest with SNP evidence: verify, appraise, and on success open the session for secrets. */
  async attestSnp(pubkey: TeePubKey, evidence: SnpEvidence): Promise<Outcome> {
    const now = new Date();
    const checked = await this.challenged("snp", now.getTime());
    if (!checked.ok) return checked.outcome;
    return this.commit("attest", await this.judgeSnp(checked.row, pubkey, evidence, now));
  }

  private async judgeSnp(row: SessionRow, pubkey: TeePubKey, evidence: SnpEvidence, now: Date): Promise<Judged<object>> {
    const judged = (outcome: Outcome, writes?: () => void, details: Record<string, unknown> = {}): Judged<object> => ({ outcome, workload: row.workload_id, nonce: row.nonce, tee: "snp", details, ...(writes && { writes }) });
    const db = this.replica(row);
    const result = await this.verifySnp(db, row, pubkey, evidence, now);
    if (!result.ok) {
      // An upstream outage leaves the challenge usable for a retry; any other failure burns the nonce.
      const burn = result.refusal.status === 503 ? undefined : () => this.sql().exec("UPDATE session SET state = 'failed'");
      return judged(await this.countVerifiedFailure(row.workload_id, result), burn, result.rules ? { rules: result.rules } : {});
    }
    const deadline = now.getTime() + seconds(this.env.SESSION_TTL_SECONDS, 10800) * 1000;
    const bookmark = db.getBookmark();
    return judged(
      { ok: true },
      () =>
        this.sql().exec(
          "UPDATE session SET state = 'attested', deadline = ?, k_mod = ?, k_exp = ?, attested_at = ?, measurement = ?, reported_tcb = ?, chip_hash = ?, generation = ?, bookmark = ?",
          deadline,
          pubkey.kMod,
          pubkey.kExp,
          now.getTime(),
          result.measurement,
          result.reportedTcb,
          result.chipHash,
          result.generation,
          bookmark,
        ),
      { measurement: result.measurement, reported_tcb: result.reportedTcb, chip_id_sha256: result.chipHash, revocation: result.revocation },
    );
  }

  /**
   * Evidence that verified (AMD-signed, bound to this nonce) but that the workload's policy refused costs
   * the workload's failure budget; nothing else does, so no party without genuine hardware can spend it.
   */
  private async countVerifiedFailure(workloadId: string, result: Extract<Outcome, { ok: false }> & { verified?: boolean }): Promise<Outcome> {
    const limiter = this.env.ATTEST_FAILURES_PER_WORKLOAD;
    const refused = { ok: false as const, refusal: result.refusal };
    if (!result.verified || !limiter) return refused;
    const { success } = await limiter.limit({ key: workloadId });
    return success ? refused : refuse(429, "rate-limited", "too many refused attestations for this workload; retry later", { retryAfter: 60 });
  }

  private async verifySnp(
    db: D1DatabaseSession,
    row: SessionRow,
    pubkey: TeePubKey,
    evidence: SnpEvidence,
    now: Date,
  ): Promise<Outcome<{ measurement: string; reportedTcb: string; chipHash: string; revocation: string; generation: number }> & { verified?: boolean; rules?: unknown }> {
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
      // Whatever a malformed chain makes the decoders throw is the evidence's fault, never a 500.
      return refuse(400, "evidence-malformed", e instanceof TypeError ? e.message : "cert_chain could not be parsed");
    }
    const workload: LiveWorkload | null = await getWorkload(db, row.workload_id);
    if (!workload) return refuse(400, "workload-unknown", `workload "${row.workload_id}" is no longer registered`);

    let policy;
    try {
      policy = parseSnpPolicy(workload.teeConfig);
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      return refuse(400, "tee-config-invalid", `the workload's SNP policy is invalid: ${e.message}`.slice(0, 180));
    }
    const kdsUrl = this.env.KDS_URL || DEFAULT_KDS_URL;
    const caches = cacheDb(db, this.env.DB, (p) => this.ctx.waitUntil(p));
    try {
      const verified = await verifySnpReport(report, {
        trust: (await anchorsFor(this.env.EXTRA_TRUSTED_ARKS)).snp,
        productHint: evidence.gen,
        certificates,
        provider: workerCertificateProvider(caches, kdsUrl, now),
        revocation: { source: workerCrlSource(caches, kdsUrl, now), mode: this.env.CRL_MODE === "strict" ? "strict" : "best-effort" },
        now,
      });
      // reference-kbs binding: SHA-512 over the nonce and the base64 texts exactly as sent.
      const reportData = await sha512(concat(utf8(row.nonce), utf8(pubkey.kMod), utf8(pubkey.kExp)));
      assertAppraised(appraiseSnp(verified, { measurement: fromHex(workload.launchMeasurement), reportData }, policy));
      const chipHash = toHex(await sha256(verified.report.chipId));
      return { ok: true, measurement: toHex(verified.report.measurement), reportedTcb: verified.reportedTcb.raw, chipHash, revocation: verified.revocation.status, generation: workload.generation };
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      // Transient upstream problems keep the challenge usable; everything else is the evidence's fault.
      if (e.code === "certs-unavailable" || e.code === "crl-unavailable") return refuse(503, e.code, e.message, { retryAfter: e.extra.retryAfter ?? 60 });
      // A policy refusal comes after the signature verified; with report_data passing it was also made
      // for this nonce and key, so it is fresh evidence from genuine hardware, not a replayed report.
      // Its rules go to the audit row, not the answer, which libkrun's client reads into 200 bytes.
      const refusal = refuse(400, `snp-${e.code}`, e.message);
      if (e.code !== "policy") return refusal;
      const rules = e.extra.rules ?? [];
      return { ...refusal, verified: !rules.some((r) => r.rule === "report_data"), rules };
    }
  }

  /**
   * GET /key/:key_id: a secret of this session's own workload (newest live version), sealed to the
   * attested guest, while the workload is still at the generation the session attested under.
   */
  async releaseSecret(keyId: string): Promise<Outcome<{ body: string }>> {
    const row = await this.current();
    if (!row || row.state !== "attested") return AttestationSession.noSession("secret.release");
    const db = this.replica(row);
    const bookmark = () => this.sql().exec("UPDATE session SET bookmark = ?", db.getBookmark());
    const judged = (outcome: Outcome<{ body: string }>, writes: () => void, version?: number): Judged<{ body: string }> => ({
      outcome,
      workload: row.workload_id,
      nonce: row.nonce,
      tee: row.tee,
      keyId,
      writes,
      ...(version !== undefined && { version }),
      details: { measurement: row.measurement, reported_tcb: row.reported_tcb, chip_id_sha256: row.chip_hash },
    });
    let secret: Releasable;
    try {
      // Key ids are looked up within the session's own workload only: another workload's keys are unreachable.
      secret = await releasableSecret(db, await masterKeys(this.env.KBS_MASTER_KEY), row.workload_id, keyId, row.generation ?? 0);
    } catch (e) {
      if (e instanceof SealConfigError) return this.commit("secret.release", judged(refuse(503, "kbs-misconfigured", "the KBS master key is not configured; tell the operator"), bookmark));
      if (e instanceof SealError) return this.commit("secret.release", judged(refuse(503, "secret-unavailable", "the stored secret does not authenticate; tell the operator"), bookmark));
      throw e;
    }
    if (secret.kind === "revoked") {
      const burn = () => this.sql().exec("UPDATE session SET state = 'failed'");
      return this.commit("secret.release", judged(refuse(401, "session-revoked", `${secret.why}; attest again`), burn));
    }
    if (secret.kind === "no-such-key") return this.commit("secret.release", judged(refuse(401, "key-not-authorized", "this session's workload has no such key"), bookmark));
    const sealed = row.tee === "sev" ? await this.sealSev(secret.value) : await this.sealSnp(row, secret.value);
    secret.value.fill(0);
    return this.commit("secret.release", judged(sealed, bookmark, secret.version));
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

  /** Exports the audit rows, then waits for the deadline; after it, deletes everything once exported. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    try {
      await this.exportAudit();
    } catch (e) {
      console.error(JSON.stringify({ event: "audit.export-failed", name: (e as Error)?.name }));
      await this.ctx.storage.setAlarm(now + EXPORT_RETRY_MS);
      return;
    }
    const row = await this.current(now);
    // Rows appended while the export was in flight go out in the next one.
    const more = this.hasStorage() && hasUnexported(this.sql());
    if (row) await this.ctx.storage.setAlarm(more ? now + EXPORT_DELAY_MS : row.deadline);
    else if (more) await this.ctx.storage.setAlarm(now);
    else {
      await this.ctx.storage.deleteAll();
      this.schemaReady = false;
    }
  }
}

/** One JSON line per event; never evidence, keys, tokens or secrets. */
function log(fields: Record<string, unknown>): void {
  console.log(JSON.stringify(fields));
}
