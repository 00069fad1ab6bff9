// The SNP appraisal policy: a workload's tee_config as a declarative JSON document, validated with zod.
// Every key is optional. The defaults are as permissive as virtee/reference-kbs (which checks only the
// measurement and REPORT_DATA) except for three: a debuggable guest and one with a migration agent are
// refused (as go-sev-guest's defaults do), and only VMPL 0 is accepted. Provisional firmware stays allowed
// by default, unlike go-sev-guest: see firmware.allow_provisional.
// The parsed policy keeps the document's snake_case shape with every default filled in, so it can be
// shown as the effective policy and parses back to itself.

import { TeeError } from "../../errors";
import * as z from "zod/mini";
import { PRODUCTS } from "./types";

/** A guest-policy or platform bit: must be set, must be clear, or not checked. */
const BIT_RULES = ["required", "forbidden", "any"] as const;
export type BitRule = (typeof BIT_RULES)[number];

const bit = z.enum(BIT_RULES, { error: 'expected "required", "forbidden" or "any"' });

function intIn(min: number, max: number) {
  const error = `expected an integer ${min}-${max}`;
  return z.int({ error }).check(z.minimum(min, { error }), z.maximum(max, { error }));
}

/** Hex of exactly `bytes` bytes, either case, kept lowercase. */
function hex(bytes: number) {
  const error = `expected ${bytes * 2} hex characters (${bytes} bytes)`;
  const re = new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`);
  return z.pipe(
    z.string({ error }).check(
      z.refine((s) => re.test(s), {
        error: (iss) => {
          const got = iss.input as string;
          return `${error}, got ${got.length === bytes * 2 ? "a non-hex character" : `${got.length} characters`}`;
        },
      }),
    ),
    z.transform((s: string) => s.toLowerCase()),
  );
}

/** An allow-list: an empty one would refuse every report, which is surely a mistake. */
function allowList<T extends z.ZodMiniType>(item: T, what: string) {
  return z.array(item, { error: `expected a list of ${what}` }).check(z.minLength(1, { error: `expected at least one ${what}` }));
}

/** "1.55.40" → [1, 55, 40]: `parts` decimal numbers 0-255 separated by dots; undefined if not that shape. */
export function versionParts(text: string, parts: number): number[] | undefined {
  const nums = text.split(".");
  if (nums.length !== parts || !nums.every((n) => /^\d{1,3}$/.test(n) && Number(n) <= 255)) return undefined;
  return nums.map(Number);
}

function version(parts: number, example: string) {
  const error = `expected "${["MAJOR", "MINOR", "BUILD"].slice(0, parts).join(".")}" with each part 0-255, e.g. "${example}"`;
  return z.string({ error }).check(z.refine((s) => versionParts(s, parts) !== undefined, { error }));
}

/** z.strictObject whose unknown-key error lists the allowed keys. */
function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const allowed = Object.keys(shape).join(", ");
  return z.strictObject(shape, { error: (iss) => (iss.code === "unrecognized_keys" ? `unknown key (allowed: ${allowed})` : "expected an object") });
}

const spl = intIn(0, 255);

/** Minimum security patch levels, component-wise (never the TCB as one number). Absent components are not checked. */
const tcbFloor = strict({
  bootloader: z.optional(spl),
  tee: z.optional(spl),
  snp: z.optional(spl),
  microcode: z.optional(spl),
  /** Turin only; ignored for Milan and Genoa, whose TCB has no FMC component. */
  fmc: z.optional(spl),
});

const document = strict({
  /** Further allowed MEASUREMENTs (96 hex) besides the workload's registered launch_measurement, e.g. during a rolling upgrade. */
  measurements: z._default(z.array(hex(48), { error: "expected a list of 96-hex-character measurements" }), []),
  /** Products (from CPUID, or the hint for v2 reports) whose reports are accepted. */
  products: z._default(allowList(z.enum(PRODUCTS, { error: `expected one of ${PRODUCTS.join(", ")}` }), "product"), [...PRODUCTS]),
  /** Lowest accepted report VERSION (2-5); 3 demands CPUID in the report, 5 the mitigation vectors. */
  min_report_version: z._default(intIn(2, 5), 2),
  /** Accepted signing keys: the per-chip VCEK and/or a cloud provider's VLEK. */
  signers: z._default(allowList(z.enum(["VCEK", "VLEK"], { error: 'expected "VCEK" or "VLEK"' }), "signer"), ["VCEK", "VLEK"]),
  /** Accepted VMPLs of the requesting guest software (0 = the most privileged, e.g. no SVSM/paravisor below it). */
  vmpl: z._default(allowList(intIn(0, 3), "VMPL"), [0]),
  /** The guest POLICY the owner launched the guest with (AMD pub. 56860; docs/snp-verification.md §Guest POLICY and PLATFORM_INFO). */
  guest_policy: z.prefault(strict({
    /** DEBUG: the host may decrypt the guest. Default "forbidden" (or from the legacy allow_debug). */
    debug: z.optional(bit),
    /** MIGRATE_MA: a migration agent may be associated. Default "forbidden": an agent can move the guest and its memory elsewhere. */
    migrate_ma: z._default(bit, "forbidden"),
    /** SMT: the host may run the guest with SMT on. */
    smt: z._default(bit, "any"),
    /** SINGLE_SOCKET: the guest may run on one socket only. */
    single_socket: z._default(bit, "any"),
    /** CXL_ALLOW: CXL devices or memory may be attached. */
    cxl_allow: z._default(bit, "any"),
    /** MEM_AES_256_XTS: AES-256-XTS memory encryption required. */
    mem_aes_256_xts: z._default(bit, "any"),
    /** RAPL_DIS: running average power limit must be disabled. */
    rapl_dis: z._default(bit, "any"),
    /** CIPHERTEXT_HIDING: DRAM ciphertext hiding must be enabled. */
    ciphertext_hiding: z._default(bit, "any"),
    /** PAGE_SWAP_DISABLE: SNP page move/swap commands disabled for the guest. */
    page_swap_disable: z._default(bit, "any"),
    /** Lowest ABI "MAJOR.MINOR" the guest must have required of the firmware (POLICY ABI_MAJOR.ABI_MINOR). */
    min_abi: z.optional(version(2, "1.51")),
  }), {}),
  /** PLATFORM_INFO bits of the host. Bits this policy does not name (e.g. Turin's reserved bit 6) are tolerated. */
  platform: z.prefault(strict({
    smt_enabled: z._default(bit, "any"),
    tsme_enabled: z._default(bit, "any"),
    ecc_enabled: z._default(bit, "any"),
    rapl_disabled: z._default(bit, "any"),
    ciphertext_hiding_enabled: z._default(bit, "any"),
    /** BadRAM alias check done since reset (AMD-SB-3015). */
    alias_check_complete: z._default(bit, "any"),
    tio_enabled: z._default(bit, "any"),
  }), {}),
  /** TCB floors. */
  tcb: z.prefault(strict({
    /** Floor for REPORTED_TCB, the TCB the VEK is issued for. */
    reported: z.optional(tcbFloor),
    /** Floor for LAUNCH_TCB, the TCB the guest was launched on. */
    launch: z.optional(tcbFloor),
    /** Floor for COMMITTED_TCB, the anti-rollback floor of the platform. */
    committed: z.optional(tcbFloor),
  }), {}),
  firmware: z.prefault(strict({
    /** Lowest current firmware "MAJOR.MINOR.BUILD" (CURRENT_MAJOR/MINOR/BUILD). */
    min_version: z.optional(version(3, "1.55.40")),
    /**
     * false: refuse provisional firmware, i.e. CURRENT_TCB and version must equal COMMITTED_TCB and version.
     * true (the default): COMMITTED may lag CURRENT but never exceed it. Default true because real reports
     * from VMPL 0 guests run provisional firmware (test/fixtures: trustee's Milan report, CURRENT_TCB
     * microcode 0xce over COMMITTED 0x73); go-sev-guest refuses them unless told otherwise.
     */
    allow_provisional: z._default(z.boolean({ error: "expected true or false" }), true),
  }), {}),
  /** Exact HOST_DATA (64 hex), e.g. the hash of CoCo init-data. */
  host_data: z.optional(hex(32)),
  /** Exact REPORT_ID_MA (64 hex); all "ff" means no migration agent. */
  report_id_ma: z.optional(hex(32)),
  /** Allowed ID_KEY_DIGESTs (96 hex each): the guest's ID block was signed by one of these keys. */
  id_key_digests: z.optional(allowList(hex(48), "ID key digest")),
  /** Allowed AUTHOR_KEY_DIGESTs (96 hex each). */
  author_key_digests: z.optional(allowList(hex(48), "author key digest")),
  /** Exact FAMILY_ID (32 hex) from the ID block. */
  family_id: z.optional(hex(16)),
  /** Exact IMAGE_ID (32 hex) from the ID block. */
  image_id: z.optional(hex(16)),
  /** Lowest GUEST_SVN. */
  min_guest_svn: z.optional(intIn(0, 0xffffffff)),
  /** Allowed CHIP_IDs (128 hex each; on Turin the 8-byte id followed by 56 zero bytes). VLEK reports carry zeros. */
  chip_ids: z.optional(allowList(hex(64), "chip id")),
  /** Mitigation vector bits (0-63) that must be set; only v5 reports carry the vectors, older ones fail these rules. */
  mitigation_vector: z.prefault(strict({
    /** Bits required in CURRENT_MIT_VECTOR. */
    current: z.optional(z.array(intIn(0, 63), { error: "expected a list of bit numbers 0-63" })),
    /** Bits required in LAUNCH_MIT_VECTOR. */
    launch: z.optional(z.array(intIn(0, 63), { error: "expected a list of bit numbers 0-63" })),
  }), {}),
  /** Legacy form (issue 2): true = guest_policy.debug "any", false = "forbidden". Give this or guest_policy.debug, not both. */
  allow_debug: z.optional(z.boolean({ error: "expected true or false" })),
}).check(
  z.superRefine((p, ctx) => {
    if (p.allow_debug !== undefined && p.guest_policy.debug !== undefined) {
      ctx.addIssue({ code: "custom", path: ["allow_debug"], message: "legacy alias of guest_policy.debug: give only one of them" });
    }
  }),
);

const schema = z.pipe(
  document,
  z.transform(({ allow_debug, ...p }: z.output<typeof document>) => {
    const { debug, ...bits } = p.guest_policy;
    return { ...p, guest_policy: { debug: debug ?? (allow_debug ? "any" : "forbidden"), ...bits } };
  }),
);

/** A parsed, complete SNP policy (snake_case, defaults filled in). */
export type SnpPolicy = z.output<typeof schema>;

/** A tee_config that is a JSON policy document but an invalid one; `problems` holds one "path: what is wrong" each. */
export class PolicyError extends TeeError {
  override readonly name = "PolicyError";
  constructor(readonly problems: string[]) {
    super("snp", "policy-invalid", problems.join("; "));
  }
}

function pathOf(path: PropertyKey[]): string {
  return path.reduce<string>((s, p) => (typeof p === "number" ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), "");
}

function problems(issues: z.core.$ZodIssue[]): string[] {
  return issues.flatMap((iss) =>
    iss.code === "unrecognized_keys" ? iss.keys.map((k) => `${pathOf([...iss.path, k])}: ${iss.message}`) : [`${pathOf(iss.path) || "policy"}: ${iss.message}`],
  );
}

/**
 * The SNP policy of a tee_config. Text whose first non-blank character is "{" is a policy document and
 * must be valid (else PolicyError: a mistyped policy must not silently become a laxer one); any other
 * text (free text, "", what reference-kbs stores) means the default policy.
 */
export function parseSnpPolicy(teeConfig: string): SnpPolicy {
  const text = teeConfig.trimStart();
  if (!text.startsWith("{")) return schema.parse({});
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PolicyError([`policy: not valid JSON (${(e as Error).message})`]);
  }
  const result = schema.safeParse(json);
  if (!result.success) throw new PolicyError(problems(result.error.issues));
  return result.data;
}
