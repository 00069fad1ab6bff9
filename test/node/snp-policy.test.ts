// Parsing of the SNP policy document (a workload's tee_config): defaults, legacy forms, and precise errors.

import { describe, expect, it } from "vitest";
import { parseSnpPolicy, PolicyError } from "../../src/tee/snp/policy";

const DEFAULT = {
  measurements: [],
  products: ["Milan", "Genoa", "Turin"],
  min_report_version: 2,
  signers: ["VCEK", "VLEK"],
  vmpl: [0],
  platform: {
    smt_enabled: "any",
    tsme_enabled: "any",
    ecc_enabled: "any",
    rapl_disabled: "any",
    ciphertext_hiding_enabled: "any",
    alias_check_complete: "any",
    tio_enabled: "any",
  },
  tcb: {},
  firmware: { allow_provisional: true },
  mitigation_vector: {},
  guest_policy: {
    debug: "forbidden",
    migrate_ma: "forbidden",
    smt: "any",
    single_socket: "any",
    cxl_allow: "any",
    mem_aes_256_xts: "any",
    rapl_dis: "any",
    ciphertext_hiding: "any",
    page_swap_disable: "any",
  },
};

function problemOf(teeConfig: string): string {
  try {
    parseSnpPolicy(teeConfig);
  } catch (e) {
    if (e instanceof PolicyError) return e.message;
    throw e;
  }
  throw new Error("parsed");
}

describe("non-policy tee_config means the default policy", () => {
  it.each(["", "   ", "free text from reference-kbs", "null", "42", "[true]", '"{}"'])("%j", (config) => {
    expect(parseSnpPolicy(config)).toEqual(DEFAULT);
  });

  it("{} is the default policy too", () => {
    expect(parseSnpPolicy("{}")).toEqual(DEFAULT);
    expect(parseSnpPolicy("  \n{ }")).toEqual(DEFAULT);
  });
});

describe("legacy allow_debug", () => {
  it("true maps to guest_policy.debug \"any\", false to \"forbidden\"", () => {
    expect(parseSnpPolicy('{"allow_debug": true}').guest_policy.debug).toBe("any");
    expect(parseSnpPolicy('{"allow_debug": false}')).toEqual(DEFAULT);
  });

  it("is an error next to guest_policy.debug and when not a boolean", () => {
    expect(problemOf('{"allow_debug": true, "guest_policy": {"debug": "forbidden"}}')).toBe("allow_debug: legacy alias of guest_policy.debug: give only one of them");
    expect(problemOf('{"allow_debug": "true"}')).toBe("allow_debug: expected true or false");
  });
});

describe("a full policy", () => {
  const full = {
    measurements: ["AB".repeat(48)],
    products: ["Genoa", "Turin"],
    min_report_version: 5,
    signers: ["VCEK"],
    vmpl: [0, 1],
    guest_policy: { debug: "forbidden", smt: "any", single_socket: "required", min_abi: "1.55" },
    platform: { smt_enabled: "forbidden", alias_check_complete: "required" },
    tcb: { reported: { bootloader: 10, tee: 0, snp: 25, microcode: 84, fmc: 0 }, launch: { snp: 20 }, committed: { microcode: 80 } },
    firmware: { min_version: "1.55.43", allow_provisional: false },
    host_data: "cd".repeat(32),
    report_id_ma: "ff".repeat(32),
    id_key_digests: ["01".repeat(48)],
    author_key_digests: ["02".repeat(48)],
    family_id: "03".repeat(16),
    image_id: "04".repeat(16),
    min_guest_svn: 7,
    chip_ids: ["05".repeat(64)],
    mitigation_vector: { current: [0], launch: [0, 1] },
  };

  it("parses with hex lowercased and the rest defaulted", () => {
    const p = parseSnpPolicy(JSON.stringify(full));
    expect(p.measurements).toEqual(["ab".repeat(48)]);
    expect(p.guest_policy).toEqual({ ...DEFAULT.guest_policy, single_socket: "required", min_abi: "1.55" });
    expect(p.platform).toEqual({ ...DEFAULT.platform, smt_enabled: "forbidden", alias_check_complete: "required" });
    expect(p.tcb).toEqual(full.tcb);
    expect(p.firmware).toEqual(full.firmware);
    expect(p.chip_ids).toEqual(full.chip_ids);
    expect(parseSnpPolicy(JSON.stringify(p))).toEqual(p);
  });
});

describe("errors name the JSON path, what is wrong and what is allowed", () => {
  it.each([
    ['{"tcb": {"reported": {"snp": 256}}}', "tcb.reported.snp: expected an integer 0-255"],
    ['{"tcb": {"reported": {"snp": 1.5}}}', "tcb.reported.snp: expected an integer 0-255"],
    ['{"tcb": {"reported": {"spl": 1}}}', "tcb.reported.spl: unknown key (allowed: bootloader, tee, snp, microcode, fmc)"],
    ['{"tcb": {"current": {}}}', "tcb.current: unknown key (allowed: reported, launch, committed)"],
    ['{"debug": "any"}', /^debug: unknown key \(allowed: measurements, products, .*, allow_debug\)$/],
    ['{"guest_policy": {"smt": "yes"}}', 'guest_policy.smt: expected "required", "forbidden" or "any"'],
    ['{"platform": {"tsme_enabled": true}}', 'platform.tsme_enabled: expected "required", "forbidden" or "any"'],
    ['{"products": ["Rome"]}', "products[0]: expected one of Milan, Genoa, Turin"],
    ['{"products": []}', "products: expected at least one product"],
    ['{"signers": ["vcek"]}', 'signers[0]: expected "VCEK" or "VLEK"'],
    ['{"vmpl": [4]}', "vmpl[0]: expected an integer 0-3"],
    ['{"vmpl": 0}', "vmpl: expected a list of VMPL"],
    ['{"min_report_version": 1}', "min_report_version: expected an integer 2-5"],
    ['{"host_data": "abcd"}', "host_data: expected 64 hex characters (32 bytes), got 4 characters"],
    [`{"host_data": "${"zz".repeat(32)}"}`, "host_data: expected 64 hex characters (32 bytes), got a non-hex character"],
    [`{"measurements": ["${"ab".repeat(47)}"]}`, "measurements[0]: expected 96 hex characters (48 bytes), got 94 characters"],
    [`{"chip_ids": ["${"ab".repeat(8)}"]}`, "chip_ids[0]: expected 128 hex characters (64 bytes), got 16 characters"],
    ['{"family_id": 5}', "family_id: expected 32 hex characters (16 bytes)"],
    ['{"firmware": {"min_version": "1.55"}}', 'firmware.min_version: expected "MAJOR.MINOR.BUILD" with each part 0-255, e.g. "1.55.40"'],
    ['{"firmware": {"min_version": "1.55.256"}}', 'firmware.min_version: expected "MAJOR.MINOR.BUILD" with each part 0-255, e.g. "1.55.40"'],
    ['{"guest_policy": {"min_abi": "1"}}', 'guest_policy.min_abi: expected "MAJOR.MINOR" with each part 0-255, e.g. "1.51"'],
    ['{"min_guest_svn": -1}', "min_guest_svn: expected an integer 0-4294967295"],
    ['{"mitigation_vector": {"current": [64]}}', "mitigation_vector.current[0]: expected an integer 0-63"],
    ['{"guest_policy": []}', "guest_policy: expected an object"],
    ['{"vmpl": [0], oops}', /^policy: not valid JSON \(/],
  ])("%s", (config, message) => {
    expect(problemOf(config)).toMatch(typeof message === "string" ? new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) : message);
  });

  it("lists every problem, one per unknown key", () => {
    const e = (() => {
      try {
        parseSnpPolicy('{"a": 1, "b": 2, "vmpl": [9]}');
      } catch (x) {
        return x as PolicyError;
      }
      throw new Error("parsed");
    })();
    expect(e).toBeInstanceOf(PolicyError);
    expect(e.name).toBe("PolicyError");
    expect(e.problems).toHaveLength(3);
    expect(e.problems.map((p) => p.split(":")[0])).toEqual(expect.arrayContaining(["a", "b", "vmpl[0]"]));
  });
});
