import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import type { Json } from "miniflare";
import { defineConfig } from "vitest/config";
import { createSyntheticChip, exportChip } from "./lab/synthetic-amd";
import { createSevPlatform, exportSevPlatform } from "./lab/synthetic-sev";
import { sevArkPem } from "./src/tee/trust";
import { generateMasterKey } from "./src/crypto/seal";
import { testJwtSigners } from "./test/helpers/admin-jwt";
import { FIXTURES } from "./test/helpers/fixtures";

/** Workers tests cannot read host files, so test/fixtures travels in as a binding (relative path → base64). */
function fixturesBinding(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(FIXTURES, p).split(sep).join("/")] = readFileSync(p).toString("base64");
    }
  };
  walk(FIXTURES);
  return out;
}


// The chips and keys are made once for every workers project, and made while the Node tests run (RSA key
// generation takes seconds, which would otherwise delay the first workers file).
const commonOptions = buildCommonOptions();

async function buildCommonOptions() {
  // Lab chips whose ARKs the Worker trusts through EXTRA_TRUSTED_ARKS, as an operator would list them.
  const chips = await Promise.all([
    createSyntheticChip({ product: "Milan" }),
    createSyntheticChip({ product: "Turin" }),
    createSyntheticChip({ product: "Genoa", vekKind: "VLEK" }),
  ]);
  const jwtSigners = await testJwtSigners();
  // The Trustee attestation token's signing key, as `npm start` generates it.
  const tokenKey = (await crypto.subtle.exportKey("jwk", ((await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])) as CryptoKeyPair).privateKey)) as JsonWebKey;
  // A legacy SEV platform the operator lists, and one nobody trusts.
  const [sevTrusted, sevUnlisted] = await Promise.all([createSevPlatform(), createSevPlatform()]);
  return {
    wrangler: { configPath: "./wrangler.toml" },
    miniflare: {
      bindings: {
        TEST_MIGRATIONS: await readD1Migrations(resolve(__dirname, "migrations")),
        TEST_FIXTURES: fixturesBinding(),
        // JSON-safe by construction (base64, hex, JWK).
        TEST_CHIPS: (await Promise.all(chips.map(exportChip))) as unknown as Json,
        TEST_SEV_PLATFORMS: { trusted: await exportSevPlatform(sevTrusted), unlisted: await exportSevPlatform(sevUnlisted) } as unknown as Json,
        EXTRA_TRUSTED_ARKS: chips.map((c) => c.arkPem).join("") + sevArkPem(sevTrusted.chain.ca.ark.bytes),
        ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
        KBS_MASTER_KEY: generateMasterKey("test1"),
        // A JWT signer the tests hold (Ed25519) and one (P-256) listed for ES256.
        ADMIN_JWT_PUBLIC_KEYS: JSON.stringify({ keys: jwtSigners.map((s) => s.publicJwk) }),
        TEST_JWT_SIGNERS: jwtSigners as unknown as Json,
        TOKEN_SIGNING_KEY: JSON.stringify({ kty: tokenKey.kty, crv: tokenKey.crv, x: tokenKey.x, y: tokenKey.y, d: tokenKey.d, kid: "test-token-1" }),
      },
      // No test reaches the network: anything a test did not mock fails loudly here.
      outboundService: (request: Request) =>
        new Response(`outbound fetch blocked in tests: ${request.url}`, { status: 599 }),
    },
  };
}

/**
 * A project of end-to-end tests in workerd. Guest event lines are off (LOG_LEVEL=warn) so a failure stands
 * out in the output; only the test that inspects those lines runs in a project that logs them.
 */
function workersProject(name: string, logLevel: string, include: string[], exclude: string[] = []) {
  // One options object per project (the pool asks once per test file), on the shared chips and keys.
  let options: Promise<Awaited<ReturnType<typeof buildCommonOptions>>> | undefined;
  const withLogLevel = async () => {
    const common = await commonOptions;
    return { ...common, miniflare: { ...common.miniflare, bindings: { ...common.miniflare.bindings, LOG_LEVEL: logLevel } } };
  };
  return {
    plugins: [
      cloudflareTest(() => (options ??= withLogLevel())),
    ],
    test: {
      name,
      include,
      exclude,
      setupFiles: ["test/workers/setup.ts"],
      testTimeout: 30_000,
    },
  };
}

const LOG_TESTS = ["test/workers/logs.test.ts"];

export default defineConfig({
  test: {
    // Both cores: a workers file spends most of its time waiting on workerd, not computing.
    maxWorkers: 2,
    projects: [
      workersProject("workers", "warn", ["test/workers/**/*.test.ts"], LOG_TESTS),
      workersProject("workers-logs", "info", LOG_TESTS),
      {
        test: {
          name: "node",
          environment: "node",
          include: ["test/node/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
