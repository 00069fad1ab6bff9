import { DurableObject } from "cloudflare:workers";
import type { AuditHead } from "../audit/chain";
import { appendToOutbox, exportOutbox, hasUnexported, OUTBOX_SCHEMA, sessionRef } from "../audit/outbox";
import { witness } from "../audit/witness";
import { config, log, newRequestId, withRequestId, type Config } from "../config";
import { toBase64, toHex } from "../crypto/bytes";
import { encryptJwe, type TeeJwk } from "../crypto/jwe";
import type { Env } from "../env";
import type { Refusal, Tee } from "../errors";
import { faultPoint } from "../faults";
import { refusalOf } from "../refusal";
import { releasableSecret, type Releasable } from "../store/secrets";
import { getWorkload, MAX_MEASUREMENT_CANDIDATES, snpWorkloadsForMeasurement, type LiveWorkload } from "../store/workloads";
import type { Build, LaunchMeasurement, SevChain } from "../tee/sev/types";
import { VerificationError } from "../tee/snp/types";
import { cacheDb } from "./cache-db";
import { signAttestationToken } from "../trustee/token";
import { NO_SESSION, NO_TRUSTEE_SESSION, refuse, type Outcome } from "./outcome";
import { checkSevMeasurement, hasSevLaunch, SEV_SCHEMA, sevSecretBody, startSevLaunch } from "./sev";
import { isVerifiedRefusal, judgeSnpEvidence, snpAttested, snpSecretBody, type SnpAttested, type SnpEvidence, type TeePubKey } from "./snp";
import { annotatedEvidence, chooseWorkload, policyMeasurements, verifyTrusteeEvidence, type TrusteeAttestation } from "./trustee";

export type { SnpEvidence, TeePubKey } from "./snp";
export type { TrusteeAttestation } from "./trustee";

/** What /auth hands the session: SNP needs only the workload; SEV also the platform chain and build. */
export type BeginInit =
  | { tee: "snp"; sessionId: string; workloadId: string }
  | { tee: "sev"; sessionId: string; workloadId: string; build: Build; chain: SevChain };

type State = "challenged" | "attested" | "failed";

interface SessionRow {
  session_id: string;
  /** Null for a Trustee session until /attest finds its workload (the legacy protocol names it at /auth). */
  workload_id: string | null;
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

const SESSION_SCHEMA = `CREATE TABLE IF NOT EXISTS session (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  session_id TEXT NOT NULL,
  workload_id TEXT,
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
)`;
/**
 * What a Trustee KBS 0.4.0 session holds beyond the session row: its nonce, and once attested the guest's
 * JWK (resources are encrypted to it) and the token it was given. A table of its own rather than columns, so
 * an object created by an older version (its session table as it was) needs no migration.
 */
const TRUSTEE_SCHEMA = `CREATE TABLE IF NOT EXISTS trustee (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  nonce TEXT NOT NULL,
  tee_pubkey TEXT,
  token TEXT
)`;
const SCHEMA = [SESSION_SCHEMA, SEV_SCHEMA, TRUSTEE_SCHEMA, OUTBOX_SCHEMA].join(";\n");

interface TrusteeRow {
  nonce: string;
  tee_pubkey: string | null;
  token: string | null;
}

/** A refused outcome. */
type Refusing = { ok: false; refusal: Refusal };

/** A session row with its workload: every legacy session, and a Trustee session once attested. */
type WithWorkload = SessionRow & { workload_id: string };
const hasWorkload = (row: SessionRow): row is WithWorkload => row.workload_id !== null;

/** The Trustee protocol's sessions, audited as such. */
const TRUSTEE = { protocol: "trustee-0.4.0" };

/**
 * An outcome, the state writes that go with it and what its audit row says. The writes and the row are
 * committed in one storage transaction: neither exists without the other.
 */
interface Judged<T> {
  outcome: Outcome<T>;
  /** Null while a Trustee session's workload is unknown. */
  workload: string | null;
  sessionId: string;
  tee: Tee;
  writes?: (sql: SqlStorage) => void;
  details?: Record<string, unknown>;
  keyId?: string;
  version?: number;
}

/** Runs an RPC call with the Worker's request id on its log lines; a call without one (the alarm, a test) gets its own. */
const traced = <T>(requestId: string | undefined, run: () => Promise<T>): Promise<T> => withRequestId(requestId ?? newRequestId(), run);

/** After a failed audit export, the next try (the alarm's own retries back off too fast for an outage). */
const EXPORT_RETRY_MS = 30_000;
/** Rows wait this long for export, so a whole auth → attest → key flow usually goes out in one D1 batch. */
const EXPORT_DELAY_MS = 1_000;

/**
 * An accepted SNP attestation (either protocol): the session's attested columns, plus the protocol's own
 * (`columns`), and its audit details.
 */
function attestedSnp(a: SnpAttested, at: { now: number; deadline: number; generation: number; bookmark: string | null }, columns: Record<string, SqlStorageValue>) {
  const set = { ...columns, deadline: at.deadline, attested_at: at.now, measurement: a.measurement, reported_tcb: a.reportedTcb, chip_hash: a.chipHash, generation: at.generation, bookmark: at.bookmark };
  return {
    write: (sql: SqlStorage) => sql.exec(`UPDATE session SET state = 'attested', ${Object.keys(set).map((c) => `${c} = ?`).join(", ")}`, ...Object.values(set)),
    details: { measurement: a.measurement, reported_tcb: a.reportedTcb, chip_id_sha256: a.chipHash, revocation: a.revocation },
  };
}

// A burnt session can never use its SEV transport keys, or its Trustee token and key, again: they go now.
const burn = (sql: SqlStorage) => sql.exec("UPDATE session SET state = 'failed'; DELETE FROM sev; DELETE FROM trustee");

/**
 * One attestation session, a small state machine: challenged → attested (or failed), then gone. It holds
 * the session id, the attested key and its deadlines, and its own shard of the audit log: every state
 * change commits together with its audit row, and the alarm exports the rows to D1 off the request path.
 * Expiry is checked on every call and enforced by the alarm, which deletes all storage once the rows are
 * exported. The TEE-specific steps live in ./snp.ts and ./sev.ts.
 */
export class AttestationSession extends DurableObject<Env> {
  private schemaReady = false;
  /**
   * The attestation in progress. An attestation checks the state, then awaits D1 and KDS, then writes: two
   * /attest calls of one session interleaving there could both succeed, the second replacing the first's
   * key. They run one after the other instead; the second then finds the session attested (or burnt).
   */
  private attesting: Promise<unknown> = Promise.resolve();

  private oneAtATime<T>(step: () => Promise<T>): Promise<T> {
    const run = this.attesting.then(step);
    this.attesting = run.catch(() => undefined);
    return run;
  }

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

  private settings(): Config {
    return config(this.env);
  }

  /** The live session, or null when there is none or it expired (which also ends it). */
  private current(now = Date.now()): SessionRow | null {
    if (!this.hasStorage()) return null;
    const row = this.sql()
      .exec<SessionRow & Record<string, SqlStorageValue>>("SELECT session_id, workload_id, tee, state, deadline, k_mod, k_exp, measurement, reported_tcb, chip_hash, generation, bookmark FROM session")
      .toArray()[0];
    if (!row) return null;
    if (now >= row.deadline) {
      // Keys and state go now; the audit rows stay until the alarm has exported them. The alarm is set in
      // the same transaction: no kill in between can leave rows without an alarm to export them.
      this.ctx.storage.transactionSync(() => {
        this.sql().exec("DELETE FROM session; DELETE FROM sev; DELETE FROM trustee");
        void this.ctx.storage.setAlarm(now);
      });
      return null;
    }
    return row;
  }

  /** Commits the state writes and the audit row in one transaction, with the alarm that exports the row. */
  private commit<T>(event: string, j: Judged<T>): Outcome<T> {
    const ok = j.outcome.ok;
    const reason = j.outcome.ok ? null : j.outcome.refusal.code;
    log(this.env, "info", { event, tee: j.tee, workload: j.workload, key_id: j.keyId, version: j.version, ok, code: reason, ...j.details });
    // The row is durable before the answer leaves. A later step of the flow moves the alarm on a little,
    // so a whole auth → attest → key flow usually goes out in one batch.
    this.ctx.storage.transactionSync(() => {
      void this.ctx.storage.setAlarm(Date.now() + EXPORT_DELAY_MS);
      j.writes?.(this.sql());
      faultPoint("session.before-audit");
      appendToOutbox(this.sql(), {
        shard: this.shard(),
        at: Date.now(),
        actor: "guest",
        event,
        workload: j.workload,
        keyId: j.keyId ?? null,
        version: j.version ?? null,
        session: sessionRef(j.sessionId),
        ok,
        reason,
        details: { tee: j.tee, ...j.details },
      });
    });
    return j.outcome;
  }

  /** A call that found no live session: logged, never stored (the router counts it per address). */
  private noSession<T>(event: string, answer = NO_SESSION): Outcome<T> {
    log(this.env, "info", { event, ok: false, code: answer.refusal.code });
    return answer;
  }

  /** The Trustee protocol's part of this session, or null for a legacy session. */
  private trusteeRow(): TrusteeRow | null {
    return this.sql().exec<TrusteeRow & Record<string, SqlStorageValue>>("SELECT nonce, tee_pubkey, token FROM trustee").toArray()[0] ?? null;
  }

  /** A named error as a refusal; anything else is a bug and propagates. */
  private static refused(e: unknown): { ok: false; refusal: NonNullable<ReturnType<typeof refusalOf>> } {
    const refusal = refusalOf(e);
    if (!refusal) throw e;
    return { ok: false, refusal };
  }

  /** A D1 read-replica session that continues from this session's last read. */
  private replica(row: Pick<SessionRow, "bookmark"> | null): D1DatabaseSession {
    return this.env.DB.withSession(row?.bookmark ?? "first-unconstrained");
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

  /** POST /auth: check the workload can attest with this TEE, then issue the challenge (SEV: the launch blob). */
  begin(init: BeginInit, requestId?: string): Promise<Outcome<{ extraParams: string }>> {
    return traced(requestId, async () => {
      if (this.current()) return refuse(409, "session-exists", "session id collision; retry /auth");
      return this.commit("auth", await this.open(init));
    });
  }

  private async open(init: BeginInit): Promise<Judged<{ extraParams: string }>> {
    const judged = (outcome: Outcome<{ extraParams: string }>, writes?: (sql: SqlStorage) => void): Judged<{ extraParams: string }> => ({
      outcome,
      workload: init.workloadId,
      sessionId: init.sessionId,
      tee: init.tee,
      ...(writes && { writes }),
    });
    try {
      const settings = this.settings();
      const db = this.replica(null);
      const workload = await getWorkload(db, init.workloadId);
      if (!workload) return judged(refuse(400, "workload-unknown", `workload "${init.workloadId}" is not registered or has no tee_config`));
      if (workload.tee !== init.tee) return judged(refuse(400, "workload-tee-mismatch", `workload "${init.workloadId}" is registered for ${workload.tee}, not ${init.tee}`));
      const launch = init.tee === "sev" ? await startSevLaunch(init.sessionId, init.chain, init.build, workload.teeConfig, (await settings.trust()).sev) : null;
      const deadline = Date.now() + settings.challengeTtlMs;
      const bookmark = db.getBookmark();
      return judged({ ok: true, extraParams: launch?.extraParams ?? "" }, (sql) => {
        sql.exec(
          "INSERT INTO session (one, session_id, workload_id, tee, state, deadline, bookmark) VALUES (1, ?, ?, ?, 'challenged', ?, ?)",
          init.sessionId,
          init.workloadId,
          init.tee,
          deadline,
          bookmark,
        );
        launch?.store(sql);
      });
    } catch (e) {
      return judged(AttestationSession.refused(e));
    }
  }

  /** The live challenged session for this TEE; evidence of the other TEE burns it. */
  private challenged(tee: Tee, now = Date.now()): { ok: true; row: WithWorkload } | { ok: false; outcome: Outcome } {
    const row = this.current(now);
    // A Trustee session has no workload until it attests: legacy evidence is never its (its object is named apart anyway).
    if (!row || row.state === "failed" || !hasWorkload(row)) return { ok: false, outcome: this.noSession("attest") };
    const no = (outcome: Outcome, writes?: (sql: SqlStorage) => void) => ({
      ok: false as const,
      outcome: this.commit("attest", { outcome, workload: row.workload_id, sessionId: row.session_id, tee, ...(writes && { writes }) }),
    });
    if (row.state === "attested") return no(refuse(409, "already-attested", "this session is already attested; start a new one with /auth"));
    if (row.tee !== tee) return no(refuse(400, "evidence-tee-mismatch", `this session was opened for ${row.tee} but the evidence is ${tee}`), burn);
    return { ok: true, row };
  }

  /** POST /attest with SNP evidence: verify, appraise, and on success open the session for secrets. */
  attestSnp(pubkey: TeePubKey, evidence: SnpEvidence, requestId?: string): Promise<Outcome> {
    return traced(requestId, () => this.oneAtATime(() => this.judgeSnp(pubkey, evidence)));
  }

  private async judgeSnp(pubkey: TeePubKey, evidence: SnpEvidence): Promise<Outcome> {
    const now = new Date();
    const checked = this.challenged("snp", now.getTime());
    if (!checked.ok) return checked.outcome;
    const { row } = checked;
    const judged = (outcome: Outcome, writes?: (sql: SqlStorage) => void, details: Record<string, unknown> = {}): Judged<object> => ({
      outcome,
      workload: row.workload_id,
      sessionId: row.session_id,
      tee: "snp",
      details,
      ...(writes && { writes }),
    });
    const db = this.replica(row);
    try {
      const settings = this.settings();
      const workload = await getWorkload(db, row.workload_id);
      if (!workload) return this.commit("attest", judged(refuse(400, "workload-unknown", `workload "${row.workload_id}" is no longer registered`), burn));
      const caches = cacheDb(this.env, db, (p) => this.ctx.waitUntil(p));
      const attested = await judgeSnpEvidence(settings, caches, row.session_id, workload, pubkey, evidence, now);
      const at = { now: now.getTime(), deadline: now.getTime() + settings.sessionTtlMs, generation: workload.generation, bookmark: db.getBookmark() };
      const { write, details } = attestedSnp(attested, at, { k_mod: pubkey.kMod, k_exp: pubkey.kExp });
      return this.commit("attest", judged({ ok: true }, write, details));
    } catch (e) {
      const refused = await this.refusedSnp(e, row.workload_id);
      return this.commit("attest", judged(refused.outcome, refused.writes, refused.details));
    }
  }

  /**
   * A refused SNP attestation. Its failing rules go to the audit row, not the answer (libkrun's client reads
   * that into 200 bytes). A verified refusal spends `charged`'s failure budget. An upstream outage (503)
   * leaves the challenge usable for a retry; any other refusal burns the session.
   */
  private async refusedSnp(e: unknown, charged: string | null): Promise<{ outcome: Refusing; writes?: (sql: SqlStorage) => void; details: Record<string, unknown> }> {
    const refused = AttestationSession.refused(e);
    const details = e instanceof VerificationError && e.extra.rules ? { rules: e.extra.rules } : {};
    const outcome = charged !== null && isVerifiedRefusal(e) ? await this.spendFailureBudget(charged, refused) : refused;
    return { outcome, details, ...(refused.refusal.status !== 503 && { writes: burn }) };
  }

  /** A verified refusal costs the workload's failure budget; past it, the answer is 429. */
  private async spendFailureBudget(workloadId: string, refused: Refusing): Promise<Refusing> {
    const limiter = this.env.ATTEST_FAILURES_PER_WORKLOAD;
    if (!limiter || (await limiter.limit({ key: workloadId })).success) return refused;
    return refuse(429, "rate-limited", "too many refused attestations for this workload; retry later", { retryAfter: 60 });
  }

  /** POST /attest with SEV evidence: the LAUNCH_MEASURE HMAC must cover the registered digest. */
  attestSev(measurement: LaunchMeasurement, requestId?: string): Promise<Outcome> {
    return traced(requestId, () => this.oneAtATime(() => this.judgeSev(measurement)));
  }

  private async judgeSev(measurement: LaunchMeasurement): Promise<Outcome> {
    const checked = this.challenged("sev");
    if (!checked.ok) return checked.outcome;
    const { row } = checked;
    const judged = (outcome: Outcome, writes: (sql: SqlStorage) => void, details: Record<string, unknown> = {}): Judged<object> => ({
      outcome,
      workload: row.workload_id,
      sessionId: row.session_id,
      tee: "sev",
      writes,
      details,
    });
    const db = this.replica(row);
    try {
      const workload = await getWorkload(db, row.workload_id);
      if (!workload || !hasSevLaunch(this.sql())) return this.commit("attest", judged(refuse(400, "workload-unknown", `workload "${row.workload_id}" is no longer registered`), burn));
      const keepMeasure = await checkSevMeasurement(this.sql(), workload.launchMeasurement, measurement);
      const now = Date.now();
      const deadline = now + this.settings().sessionTtlMs;
      const bookmark = db.getBookmark();
      const writes = (sql: SqlStorage) => {
        sql.exec("UPDATE session SET state = 'attested', deadline = ?, attested_at = ?, measurement = ?, generation = ?, bookmark = ?", deadline, now, workload.launchMeasurement, workload.generation, bookmark);
        keepMeasure(sql);
      };
      return this.commit("attest", judged({ ok: true }, writes, { measurement: workload.launchMeasurement }));
    } catch (e) {
      return this.commit("attest", judged(AttestationSession.refused(e), burn));
    }
  }

  /**
   * GET /key/:key_id: a secret of this session's own workload (newest live version), sealed to the
   * attested guest, while the workload is still at the generation the session attested under.
   */
  releaseSecret(keyId: string, requestId?: string): Promise<Outcome<{ body: string }>> {
    return traced(requestId, async () => {
      const row = this.current();
      if (!row || row.state !== "attested" || !hasWorkload(row)) return this.noSession("secret.release");
      return this.release(row, keyId, "key", {}, (value) => (row.tee === "sev" ? sevSecretBody(this.sql(), value) : snpSecretBody(row.k_mod!, row.k_exp!, value)));
    });
  }

  /** Trustee POST /auth: a challenge with a fresh nonce. The workload is not known before /attest. */
  beginTrustee(sessionId: string, requestId?: string): Promise<Outcome<{ nonce: string; deadline: number }>> {
    return traced(requestId, async () => this.openTrustee(sessionId));
  }

  private openTrustee(sessionId: string): Outcome<{ nonce: string; deadline: number }> {
    if (this.current()) return refuse(409, "session-exists", "session id collision; retry /auth");
    const judged = (outcome: Outcome<{ nonce: string; deadline: number }>, writes?: (sql: SqlStorage) => void): Judged<{ nonce: string; deadline: number }> => ({
      outcome,
      workload: null,
      sessionId,
      tee: "snp",
      details: TRUSTEE,
      ...(writes && { writes }),
    });
    let deadline: number;
    try {
      deadline = Date.now() + this.settings().challengeTtlMs;
    } catch (e) {
      return this.commit("auth", judged(AttestationSession.refused(e)));
    }
    const nonce = toBase64(crypto.getRandomValues(new Uint8Array(32)));
    return this.commit(
      "auth",
      judged({ ok: true, nonce, deadline }, (sql) => {
        sql.exec("INSERT INTO session (one, session_id, tee, state, deadline) VALUES (1, ?, 'snp', 'challenged', ?)", sessionId, deadline);
        sql.exec("INSERT INTO trustee (one, nonce) VALUES (1, ?)", nonce);
      }),
    );
  }

  /**
   * Trustee POST /attest: verify the evidence and what it binds, find the workload whose policy accepts it,
   * and issue the attestation token. As in Trustee, a repeated /attest of an attested session gets its token
   * again (no state changes, so no audit row).
   */
  attestTrustee(a: TrusteeAttestation, requestId?: string): Promise<Outcome<{ token: string; deadline: number }>> {
    return traced(requestId, () => this.oneAtATime(() => this.judgeTrustee(a)));
  }

  private async judgeTrustee(a: TrusteeAttestation): Promise<Outcome<{ token: string; deadline: number }>> {
    const now = new Date();
    const row = this.current(now.getTime());
    const trustee = row && this.trusteeRow();
    if (!row || !trustee || row.state === "failed") return this.noSession("attest", NO_TRUSTEE_SESSION);
    if (row.state === "attested") return { ok: true, token: trustee.token!, deadline: row.deadline };
    type Attested = { token: string; deadline: number };
    const judged = (outcome: Outcome<Attested>, workload: string | null, writes?: (sql: SqlStorage) => void, details: Record<string, unknown> = {}): Judged<Attested> => ({
      outcome,
      workload,
      sessionId: row.session_id,
      tee: "snp",
      details: { ...TRUSTEE, ...details },
      ...(writes && { writes }),
    });
    if (a.runtimeData.nonce !== trustee.nonce) return this.commit("attest", judged(refuse(400, "nonce-mismatch", "runtime-data.nonce is not this session's nonce"), null, burn));
    const db = this.replica(row);
    let candidates: LiveWorkload[] = [];
    try {
      const settings = this.settings();
      const caches = cacheDb(this.env, db, (p) => this.ctx.waitUntil(p));
      const evidence = await verifyTrusteeEvidence(settings, caches, a, now);
      candidates = await snpWorkloadsForMeasurement(db, toHex(evidence.verified.report.measurement), policyMeasurements);
      const workload = chooseWorkload(candidates, evidence, MAX_MEASUREMENT_CANDIDATES);
      const deadline = now.getTime() + settings.sessionTtlMs;
      const token = await signAttestationToken(await settings.tokenKey(), {
        issuedAt: now,
        expiresAt: deadline,
        workloadId: workload.workloadId,
        generation: workload.generation,
        session: this.ctx.id.toString(),
        annotatedEvidence: annotatedEvidence(evidence, a),
      });
      const at = { now: now.getTime(), deadline, generation: workload.generation, bookmark: db.getBookmark() };
      const { write, details } = attestedSnp(await snpAttested(evidence.verified), at, { workload_id: workload.workloadId });
      const writes = (sql: SqlStorage) => {
        write(sql);
        sql.exec("UPDATE trustee SET tee_pubkey = ?, token = ?", JSON.stringify(a.runtimeData["tee-pubkey"]), token);
      };
      return this.commit("attest", judged({ ok: true, token, deadline }, workload.workloadId, writes, details));
    } catch (e) {
      // A policy refusal names the first candidate's failing rule: that workload's row, and its budget.
      const charged = isVerifiedRefusal(e) ? (candidates[0]?.workloadId ?? null) : null;
      const refused = await this.refusedSnp(e, charged);
      const details = { ...refused.details, ...(candidates.length > 0 && { candidates: candidates.map((w) => w.workloadId) }) };
      return this.commit("attest", judged(refused.outcome, charged, refused.writes, details));
    }
  }

  /**
   * Trustee GET /resource/{repository}/{type}/{tag}: the resource (a secret of the session's workload under
   * key id `repository/type/tag`) as a JWE to the attested tee-pubkey. With a Bearer `token` (already
   * verified by the router) only the session that issued it answers.
   */
  releaseResource(path: string, token: string | null, requestId?: string): Promise<Outcome<{ body: string }>> {
    return traced(requestId, async () => {
      const row = this.current();
      const trustee = row && this.trusteeRow();
      if (!row || !trustee || row.state !== "attested" || !hasWorkload(row) || (token !== null && token !== trustee.token)) return this.noSession("secret.release", NO_TRUSTEE_SESSION);
      const key = JSON.parse(trustee.tee_pubkey!) as TeeJwk;
      return this.release(row, path, "resource", TRUSTEE, async (value) => ({ ok: true, body: JSON.stringify(await encryptJwe(key, value)) }));
    });
  }

  /**
   * A secret of this session's own workload (newest live version), sealed to the attested guest, while the
   * workload is still at the generation the session attested under.
   */
  private async release(row: WithWorkload, keyId: string, what: "key" | "resource", details: Record<string, unknown>, seal: (value: Uint8Array) => Promise<Outcome<{ body: string }>>): Promise<Outcome<{ body: string }>> {
    const db = this.replica(row);
    const keepBookmark = (sql: SqlStorage) => sql.exec("UPDATE session SET bookmark = ?", db.getBookmark());
    const judged = (outcome: Outcome<{ body: string }>, writes: (sql: SqlStorage) => void, version?: number): Judged<{ body: string }> => ({
      outcome,
      workload: row.workload_id,
      sessionId: row.session_id,
      tee: row.tee,
      keyId,
      writes,
      ...(version !== undefined && { version }),
      details: { measurement: row.measurement, reported_tcb: row.reported_tcb, chip_id_sha256: row.chip_hash, ...details },
    });
    let secret: Releasable;
    try {
      // Key ids are looked up within the session's own workload only: another workload's keys are unreachable.
      secret = await releasableSecret(db, await this.settings().masterKeys(), row.workload_id, keyId, row.generation ?? 0);
    } catch (e) {
      return this.commit("secret.release", judged(AttestationSession.refused(e), keepBookmark));
    }
    if (secret.kind === "revoked") return this.commit("secret.release", judged(refuse(401, "session-revoked", `${secret.why}; attest again`), burn));
    if (secret.kind === "no-such-key") return this.commit("secret.release", judged(refuse(401, "key-not-authorized", `this session's workload has no such ${what}`), keepBookmark));
    let sealed: Outcome<{ body: string }>;
    try {
      sealed = await seal(secret.value);
    } catch (e) {
      sealed = AttestationSession.refused(e);
    } finally {
      secret.value.fill(0);
    }
    return this.commit("secret.release", judged(sealed, keepBookmark, secret.version));
  }

  /** Exports the audit rows, then waits for the deadline; after it, deletes everything once exported. */
  override alarm(): Promise<void> {
    return traced(undefined, () => this.exportOrEnd());
  }

  private async exportOrEnd(): Promise<void> {
    const now = Date.now();
    try {
      await this.exportAudit();
    } catch (e) {
      log(this.env, "error", { event: "audit.export-failed", name: (e as Error)?.name });
      await this.ctx.storage.setAlarm(now + EXPORT_RETRY_MS);
      return;
    }
    const row = this.current(now);
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
