// src/config.ts and src/refusal.ts: every unusable variable is a ConfigError naming it, which clients see
// as 503 kbs-misconfigured; the error model maps every named error in one place.
import { describe, expect, it } from "vitest";
import { AdminAuthError } from "../../src/auth/admin";
import { config } from "../../src/config";
import { SealError } from "../../src/crypto/seal";
import type { Env } from "../../src/env";
import { ConfigError, Refused, TeeError } from "../../src/errors";
import { refusalOf } from "../../src/refusal";
import { VersionConflict } from "../../src/store/secrets";
import { SevError } from "../../src/tee/sev/types";
import { PolicyError } from "../../src/tee/snp/policy";
import { VerificationError } from "../../src/tee/snp/types";

const env = (vars: Partial<Env>) => vars as Env;

describe("config", () => {
  it("has defaults for every optional variable", () => {
    expect(config(env({}))).toMatchObject({ challengeTtlMs: 300_000, sessionTtlMs: 10_800_000, crlMode: "best-effort", kdsUrl: "https://kdsintf.amd.com", logLevel: "info" });
  });

  it.each([
    ["CHALLENGE_TTL_SECONDS", "0"],
    ["SESSION_TTL_SECONDS", "three hours"],
    ["CRL_MODE", "sometimes"],
    ["KDS_URL", "kdsintf.amd.com"],
    ["LOG_LEVEL", "loud"],
  ])("a bad %s is a ConfigError naming it", (name, value) => {
    let thrown: unknown;
    try {
      config(env({ [name]: value }));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe(name);
    expect(refusalOf(thrown)).toMatchObject({ status: 503, code: "kbs-misconfigured" });
    expect(refusalOf(thrown)!.detail).toContain(name);
  });

  it.each([
    ["EXTRA_TRUSTED_ARKS", { EXTRA_TRUSTED_ARKS: "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n" }, (c: ReturnType<typeof config>) => c.trust()],
    ["EXTRA_TRUSTED_ARKS", { EXTRA_TRUSTED_ARKS: "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n" }, (c: ReturnType<typeof config>) => c.trust()],
    ["KBS_MASTER_KEY", { KBS_MASTER_KEY: "k1:c2hvcnQ=" }, (c: ReturnType<typeof config>) => c.masterKeys()],
    ["ADMIN_JWT_PUBLIC_KEYS", { ADMIN_JWT_PUBLIC_KEYS: "{" }, (c: ReturnType<typeof config>) => c.adminAuth()],
    ["TOKEN_SIGNING_KEY", {}, (c: ReturnType<typeof config>) => c.tokenKey()],
    ["TOKEN_SIGNING_KEY", { TOKEN_SIGNING_KEY: '{"kty":"EC","crv":"P-256","x":"c2hvcnQ","y":"c2hvcnQ","kid":"public-only"}' }, (c: ReturnType<typeof config>) => c.tokenKey()],
    ["TOKEN_SIGNING_KEY", { TOKEN_SIGNING_KEY: '{"kty":"EC","crv":"P-256","x":"c2hvcnQ","y":"c2hvcnQ","d":"c2hvcnQ","kid":"off-curve"}' }, (c: ReturnType<typeof config>) => c.tokenKey()],
  ] as const)("a bad %s is reported when first used, as a ConfigError naming it (and no key material)", async (name, vars, use) => {
    const settings = config(env(vars));
    const thrown = await use(settings).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe(name);
    expect(String((thrown as Error).message)).not.toContain("c2hvcnQ");
    // A rejected load is not kept: each use reports it again rather than a stale promise.
    expect(await use(settings).catch((e: unknown) => e)).toBeInstanceOf(ConfigError);
  });

  it("parses once per set of values", () => {
    const a = env({ SESSION_TTL_SECONDS: "60" });
    expect(config(a)).toBe(config({ ...a }));
    expect(config(env({ SESSION_TTL_SECONDS: "61" })).sessionTtlMs).toBe(61_000);
  });
});

describe("refusalOf: one mapping for every named error", () => {
  it.each([
    [new VerificationError("signature-invalid", "bad"), { status: 400, code: "snp-signature-invalid" }],
    [new VerificationError("certs-unavailable", "down", { retryAfter: 7 }), { status: 503, code: "certs-unavailable", retryAfter: 7 }],
    [new VerificationError("crl-unavailable", "stale"), { status: 503, code: "crl-unavailable", retryAfter: 60 }],
    [new SevError("measurement-mismatch", "no"), { status: 400, code: "sev-measurement-mismatch" }],
    [new SevError("policy-invalid", "no"), { status: 400, code: "tee-config-invalid" }],
    [new PolicyError(["x: bad"]), { status: 400, code: "tee-config-invalid" }],
    [new TeeError("snp", "evidence-malformed", "bad"), { status: 400, code: "evidence-malformed" }],
    [new ConfigError("KDS_URL", "bad"), { status: 503, code: "kbs-misconfigured" }],
    [new SealError("bad"), { status: 503, code: "secret-unavailable" }],
    [new AdminAuthError("bad"), { status: 401, code: "admin-unauthorized" }],
    [new VersionConflict("race"), { status: 409, code: "version-conflict" }],
    [new Refused({ status: 429, code: "rate-limited", detail: "slow down" }), { status: 429, code: "rate-limited" }],
    [new Error("D1_ERROR: no such table: workloads: SQLITE_ERROR"), { status: 503, code: "kbs-misconfigured" }],
  ])("%s", (error, expected) => {
    expect(refusalOf(error)).toMatchObject(expected);
  });

  it("leaves anything else to the caller (a bug, answered as a bare 500)", () => {
    expect(refusalOf(new Error("boom"))).toBeNull();
    expect(refusalOf(new TypeError("x is undefined"))).toBeNull();
    expect(refusalOf("a string")).toBeNull();
  });
});
