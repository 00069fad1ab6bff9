import { DurableObject } from "cloudflare:workers";
import { concat, fromHex, isHex, sha512, toHex, utf8 } from "../crypto/bytes";
import { maxPkcs1Plaintext, parseRsaPublicKey, rsaPkcs1Encrypt } from "../crypto/rsa";
import type { Env } from "../env";
import { DEFAULT_KDS_URL } from "../kds/kds";
import { getSecret, getWorkload } from "../store/workloads";
import { appraiseSnp, assertAppraised, parseSnpTeeConfig } from "../tee/snp/appraise";
import { trustAnchors } from "../tee/snp/trust";
import { VerificationError, type Product, type TrustAnchors } from "../tee/snp/types";
import { verifySnpReport } from "../tee/snp/verify";
import { workerCertificateProvider } from "./cert-provider";
import { certificatesFromChainField } from "./evidence";
import { NO_SESSION, refuse, type Outcome } from "./outcome";

export type Tee = "snp";

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
  reported_tcb TEXT
)`;

const SNP_REPORT_BYTES = 1184;

function seconds(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

let trustCache: { source: string; anchors: Promise<TrustAnchors> } | undefined;
/** Trust anchors are derived once per isolate (and again only if the operator's variable changes). */
function anchorsFor(extraArks: string | undefined): Promise<TrustAnchors> {
  const source = extraArks ?? "";
  if (trustCache?.source !== source) trustCache = { source, anchors: trustAnchors(source) };
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
    const row = this.sql().exec<SessionRow & Record<string, SqlStorageValue>>("SELECT nonce, workload_id, tee, state, deadline, k_mod, k_exp FROM session").toArray()[0];
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

  /** POST /auth: check the workload can attest with this TEE, then issue the challenge. */
  async begin(init: { nonce: string; workloadId: string; tee: Tee }): Promise<Outcome> {
    if (await this.current()) return refuse(409, "session-exists", "session id collision; retry /auth");
    const workload = await getWorkload(this.env.DB, init.workloadId);
    if (!workload) return refuse(400, "workload-unknown", `workload "${init.workloadId}" is not registered or has no tee_config`);
    if (workload.launchMeasurement.length !== 96) {
      return refuse(400, "workload-tee-mismatch", `workload "${init.workloadId}" has a 32-byte (SEV) launch measurement; SNP needs the 48-byte MEASUREMENT`);
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
    return { ok: true };
  }

  /** POST /attest with SNP evidence: verify, appraise, and on success open the session for secrets. */
  async attestSnp(pubkey: TeePubKey, evidence: SnpEvidence): Promise<Outcome> {
    const now = new Date();
    const row = await this.current(now.getTime());
    if (!row || row.state === "failed") return NO_SESSION;
    if (row.state === "attested") return refuse(409, "already-attested", "this session is already attested; start a new one with /auth");

    const result = await this.verifySnp(row, pubkey, evidence, now);
    if (!result.ok) {
      // An upstream outage leaves the challenge usable for a retry; any other failure burns the nonce.
      if (result.refusal.status !== 503) this.sql().exec("UPDATE session SET state = 'failed'");
      log({ event: "attest", tee: "snp", workload: row.workload_id, ok: false, code: result.refusal.code });
      return result;
    }
    const deadline = now.getTime() + seconds(this.env.SESSION_TTL_SECONDS, 10800) * 1000;
    this.sql().exec(
      "UPDATE session SET state = 'attested', deadline = ?, k_mod = ?, k_exp = ?, attested_at = ?, measurement = ?, reported_tcb = ?",
      deadline,
      pubkey.kMod,
      pubkey.kExp,
      now.getTime(),
      result.measurement,
      result.reportedTcb,
    );
    await this.ctx.storage.setAlarm(deadline);
    log({ event: "attest", tee: "snp", workload: row.workload_id, ok: true, reported_tcb: result.reportedTcb });
    return { ok: true };
  }

  private async verifySnp(row: SessionRow, pubkey: TeePubKey, evidence: SnpEvidence, now: Date): Promise<Outcome<{ measurement: string; reportedTcb: string }>> {
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

    try {
      const verified = await verifySnpReport(report, {
        trust: await anchorsFor(this.env.EXTRA_TRUSTED_ARKS),
        productHint: evidence.gen,
        certificates,
        provider: workerCertificateProvider(this.env.DB, this.env.KDS_URL || DEFAULT_KDS_URL, now),
        now,
      });
      // reference-kbs binding: SHA-512 over the nonce and the base64 texts exactly as sent.
      const reportData = await sha512(concat(utf8(row.nonce), utf8(pubkey.kMod), utf8(pubkey.kExp)));
      const rules = appraiseSnp(verified, { measurement: fromHex(workload.launchMeasurement), reportData }, parseSnpTeeConfig(workload.teeConfig));
      assertAppraised(rules);
      return { ok: true, measurement: toHex(verified.report.measurement), reportedTcb: verified.reportedTcb.raw };
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      if (e.code === "certs-unavailable") return refuse(503, e.code, e.message, { retryAfter: e.extra.retryAfter ?? 60 });
      return refuse(400, `snp-${e.code}`, e.message, e.extra.rules ? { rules: e.extra.rules } : {});
    }
  }

  /** GET /key/:key_id: the secret of this session's own workload, encrypted to the attested key. */
  async releaseSecret(keyId: string): Promise<Outcome<{ body: string }>> {
    const row = await this.current();
    if (!row || row.state !== "attested" || row.k_mod === null || row.k_exp === null) return NO_SESSION;
    // Only the session's own workload: reference-kbs lets any attested session read any key.
    const secret = keyId === row.workload_id ? await getSecret(this.env.DB, row.workload_id, keyId) : null;
    if (secret === null) return refuse(401, "key-not-authorized", "this session may only read its own workload's key");
    const key = parseRsaPublicKey(row.k_mod, row.k_exp);
    const plaintext = utf8(secret);
    if (plaintext.length > maxPkcs1Plaintext(key)) {
      return refuse(400, "secret-too-long", `the secret does not fit RSA-${key.bits} PKCS#1 v1.5 (max ${maxPkcs1Plaintext(key)} bytes)`);
    }
    const ciphertext = await rsaPkcs1Encrypt(key, plaintext);
    log({ event: "release", workload: row.workload_id, key_id: keyId });
    return { ok: true, body: `"${toHex(ciphertext)}"` };
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
