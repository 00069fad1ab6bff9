// The serde JSON of kbs-types 0.2 / sev 1.1.0 (docs/wire-format.md §JSON encoding rules, §SEV flow):
// byte arrays are arrays of integers, bitflags are {"bits":N}, and the nested payloads are JSON strings
// built in struct order.

import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import { decodeCaCertificate, decodeSevCertificate } from "./certs";
import { SevError, type LaunchMeasurement, type LaunchStart, type SecretPacket, type SevChain, type SevPolicy, type SevRequest } from "./types";

// zod/mini loads no locale: its English messages (as full zod gave) word the issues these schemas leave unworded.
z.config(en());

const Byte = z.number().check(z.int(), z.minimum(0), z.maximum(255));
const isByte = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255;
/**
 * A byte array, checked in one loop rather than by a schema per element: zod's per-element parse of a chain's
 * ~11,500 bytes was the largest single cost of an SEV /auth in workerd (BENCHMARKS.md).
 */
const Bytes = z.custom<number[]>(Array.isArray, "Invalid input: expected array").check(
  z.superRefine((items, ctx) => {
    const i = items.findIndex((v) => !isByte(v));
    if (i >= 0) ctx.addIssue({ code: "custom", path: [i], message: "expected a byte (an integer 0-255)", input: items[i] });
  }),
);

const RequestJson = z.object({
  workload_id: z.string(),
  build: z.object({ version: z.object({ major: Byte, minor: Byte }), build: Byte }),
  chain: z.object({
    ca: z.object({ ark: Bytes, ask: Bytes }),
    sev: z.object({ pdh: Bytes, pek: Bytes, oca: Bytes, cek: Bytes }),
  }),
});

const PolicyJson = z.strictObject({
  flags: z.strictObject({ bits: z.number().check(z.int(), z.minimum(0), z.maximum(0xffff)) }),
  minfw: z.strictObject({ major: Byte, minor: Byte }),
  // edgekbs's own keys; sev's serde ignores unknown keys, so the document stays a reference-kbs Policy.
  allow_debug: z.optional(z.boolean()),
  allow_key_sharing: z.optional(z.boolean()),
});

const MeasurementJson = z.object({ measure: Bytes.check(z.length(32)), mnonce: Bytes.check(z.length(16)) });

function issueText(error: z.core.$ZodError, what: string): string {
  const issue = error.issues[0]!;
  return `${[what, ...issue.path].join(".")}: ${issue.message}`;
}

function validated<T extends z.ZodMiniType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new SevError("request-malformed", issueText(result.error, what));
  return result.data;
}

/** kbs-types SevRequest (any key order; unknown keys ignored, as serde does). */
export function parseSevRequest(value: unknown): SevRequest {
  const r = validated(RequestJson, value, "extra-params");
  const { ca, sev } = r.chain;
  const caCert = (name: "ark" | "ask") => decodeCaCertificate(Uint8Array.from(ca[name]), `extra-params.chain.ca.${name}`);
  const sevCert = (name: "pdh" | "pek" | "oca" | "cek") => decodeSevCertificate(Uint8Array.from(sev[name]), `extra-params.chain.sev.${name}`);
  const chain: SevChain = {
    ca: { ark: caCert("ark"), ask: caCert("ask") },
    sev: { pdh: sevCert("pdh"), pek: sevCert("pek"), oca: sevCert("oca"), cek: sevCert("cek") },
  };
  return { workloadId: r.workload_id, build: r.build, chain };
}

export interface SevChainJson {
  ca: { ask: number[]; ark: number[] };
  sev: { pdh: number[]; pek: number[]; oca: number[]; cek: number[] };
}

/** The chain as sev serialises it (struct order, certificates as the bytes received). */
export function sevChainToJson(chain: SevChain): SevChainJson {
  const { ca, sev } = chain;
  return {
    ca: { ask: [...ca.ask.bytes], ark: [...ca.ark.bytes] },
    sev: { pdh: [...sev.pdh.bytes], pek: [...sev.pek.bytes], oca: [...sev.oca.bytes], cek: [...sev.cek.bytes] },
  };
}

// Guest policy flags (AMD pub. 55766, chapter 3): NO_DEBUG 0x01, NO_KEY_SHARING 0x02, ES 0x04, NO_SEND 0x08,
// DOMAIN 0x10, SEV 0x20; bits 6-15 are reserved.
const NO_DEBUG = 0x01;
const NO_KEY_SHARING = 0x02;
const DEFINED_FLAGS = 0x3f;

const POLICY_FORM = 'tee_config must be empty or SEV policy JSON {"flags":{"bits":0-63},"minfw":{"major":0-255,"minor":0-255}}';

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

/**
 * A SEV workload's tee_config as the policy LAUNCH_START gets. Closed by default: NO_DEBUG and NO_KEY_SHARING
 * are set (the host could otherwise decrypt the guest, or another guest share its key) unless the document
 * says `"allow_debug": true` / `"allow_key_sharing": true`; empty means exactly those two flags, minfw 0.0.
 */
export function parseSevPolicy(teeConfig: string): SevPolicy {
  if (teeConfig.trim() === "") return { flags: NO_DEBUG | NO_KEY_SHARING, minfw: { major: 0, minor: 0 } };
  let value: unknown;
  try {
    value = JSON.parse(teeConfig);
  } catch {
    throw new SevError("policy-invalid", `${POLICY_FORM}; it is not JSON`);
  }
  const result = PolicyJson.safeParse(value);
  if (!result.success) throw new SevError("policy-invalid", `${POLICY_FORM}; ${issueText(result.error, "tee_config")}`);
  const { flags, minfw, allow_debug, allow_key_sharing } = result.data;
  const reserved = flags.bits & ~DEFINED_FLAGS;
  // Reserved bits must be zero: refused here, at registration, rather than by the PSP at the guest's boot.
  if (reserved) throw new SevError("policy-invalid", `tee_config.flags.bits: ${hex(flags.bits)} sets reserved bits ${hex(reserved)} (defined: ${hex(DEFINED_FLAGS)})`);
  if (allow_debug && flags.bits & NO_DEBUG) throw new SevError("policy-invalid", "tee_config.allow_debug: true, but flags.bits sets NO_DEBUG (0x01)");
  if (allow_key_sharing && flags.bits & NO_KEY_SHARING) throw new SevError("policy-invalid", "tee_config.allow_key_sharing: true, but flags.bits sets NO_KEY_SHARING (0x02)");
  const closed = (allow_debug ? 0 : NO_DEBUG) | (allow_key_sharing ? 0 : NO_KEY_SHARING);
  return { flags: flags.bits | closed, minfw };
}

/** The 4-byte policy the PSP sees: flags (u16 LE), then minfw major and minor. */
export function policyBytes(policy: SevPolicy): Uint8Array {
  return Uint8Array.of(policy.flags & 0xff, policy.flags >> 8, policy.minfw.major, policy.minfw.minor);
}

/** The SevChallenge string inside Challenge.extra-params, field for field as sev 1.1.0 emits it. */
export function challengeExtraParams(id: string, start: LaunchStart): string {
  const s = start.session;
  return JSON.stringify({
    id,
    start: {
      policy: { flags: { bits: start.policy.flags }, minfw: { major: start.policy.minfw.major, minor: start.policy.minfw.minor } },
      cert: [...start.cert],
      session: { nonce: [...s.nonce], wrap_tk: [...s.wrapTk], wrap_iv: [...s.wrapIv], wrap_mac: [...s.wrapMac], policy_mac: [...s.policyMac] },
    },
  });
}

/** launch::sev::Measurement from the /attest tee-evidence. */
export function parseLaunchMeasurement(value: unknown): LaunchMeasurement {
  const m = validated(MeasurementJson, value, "tee-evidence");
  return { measure: Uint8Array.from(m.measure), mnonce: Uint8Array.from(m.mnonce) };
}

/** launch::sev::Secret as reference-kbs emits it (serde_json::Value: keys sorted). */
export function secretPacketJson(packet: SecretPacket): string {
  return JSON.stringify({
    ciphertext: [...packet.ciphertext],
    header: { flags: { bits: packet.header.flags }, iv: [...packet.header.iv], mac: [...packet.header.mac] },
  });
}
