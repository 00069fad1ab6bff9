// The legacy SEV / SEV-ES steps of a session (pre-attestation): the launch blob at /auth, the LAUNCH_MEASURE
// check at /attest, the LAUNCH_SECRET packet at /key. Refusals are thrown as SevError (a TeeError).

import { fromHex } from "../crypto/bytes";
import { refuse, type Outcome } from "./outcome";
import { verifySevChain } from "../tee/sev/chain";
import { challengeExtraParams, parseSevPolicy, secretPacketJson } from "../tee/sev/json";
import { createLaunchSession, launchSecretPacket, SEV_SECRET_SLOT, verifyLaunchMeasurement } from "../tee/sev/launch";
import type { Build, LaunchMeasurement, SevChain, SevPolicy, SevTrustAnchors } from "../tee/sev/types";

/** TEK and TIK never leave the session object, and are deleted when the session is burnt or expires. */
export const SEV_SCHEMA = `CREATE TABLE IF NOT EXISTS sev (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  tek BLOB NOT NULL,
  tik BLOB NOT NULL,
  build TEXT NOT NULL,
  policy TEXT NOT NULL,
  measure BLOB
)`;

interface SevRow {
  tek: ArrayBuffer;
  tik: ArrayBuffer;
  build: string;
  policy: string;
  measure: ArrayBuffer | null;
}

const sevRow = (sql: SqlStorage) => sql.exec<SevRow & Record<string, SqlStorageValue>>("SELECT tek, tik, build, policy, measure FROM sev").toArray()[0];
const keysOf = (row: SevRow) => ({ tek: new Uint8Array(row.tek), tik: new Uint8Array(row.tik) });

/** /auth: verify the platform chain to AMD, then wrap fresh transport keys to its PDH. */
export async function startSevLaunch(sessionId: string, chain: SevChain, build: Build, teeConfig: string, trust: SevTrustAnchors): Promise<{ extraParams: string; store(sql: SqlStorage): void }> {
  const policy = parseSevPolicy(teeConfig);
  const { pdh } = await verifySevChain(chain, trust);
  const { start, keys } = await createLaunchSession(pdh, policy);
  return {
    extraParams: challengeExtraParams(sessionId, start),
    store: (sql) => sql.exec("INSERT INTO sev (one, tek, tik, build, policy) VALUES (1, ?, ?, ?, ?)", keys.tek, keys.tik, JSON.stringify(build), JSON.stringify(policy)),
  };
}

/** /attest: the LAUNCH_MEASURE HMAC must cover the registered digest; on success the measure is kept for /key. */
export async function checkSevMeasurement(sql: SqlStorage, registeredDigest: string, measurement: LaunchMeasurement): Promise<(sql: SqlStorage) => void> {
  const row = sevRow(sql)!;
  await verifyLaunchMeasurement(keysOf(row), JSON.parse(row.build) as Build, JSON.parse(row.policy) as SevPolicy, fromHex(registeredDigest), measurement);
  return (s) => s.exec("UPDATE sev SET measure = ?", measurement.measure);
}

export function hasSevLaunch(sql: SqlStorage): boolean {
  return sevRow(sql) !== undefined;
}

/** /key: the LAUNCH_SECRET packet under TEK/TIK, bound to this launch's measure. */
export async function sevSecretBody(sql: SqlStorage, plaintext: Uint8Array): Promise<Outcome<{ body: string }>> {
  const row = sevRow(sql);
  if (!row?.measure) throw new Error("an attested SEV session without its launch measure");
  // Registration caps secrets at the slot size; a row written before that cap must not crash here.
  if (plaintext.length > SEV_SECRET_SLOT) return refuse(400, "secret-too-long", `SEV secrets must fit the ${SEV_SECRET_SLOT}-byte LAUNCH_SECRET slot`);
  return { ok: true, body: secretPacketJson(await launchSecretPacket(keysOf(row), new Uint8Array(row.measure), plaintext)) };
}
