// Fresh values for a deployment's secrets, printed on stdout alone so they pipe into `wrangler secret put`.
import { toHex } from "../src/crypto/bytes";
import { generateMasterKey, parseMasterKeys } from "../src/crypto/seal";
import { ConfigError } from "../src/errors";
import { EXIT, parseCommand, UsageError, type Command, type Io } from "./command";

const randomHex = (bytes: number) => toHex(crypto.getRandomValues(new Uint8Array(bytes)));

async function masterKeyNew(args: string[], io: Io): Promise<number> {
  const { values } = parseCommand(args, { kid: { type: "string" } });
  // A dated kid by default: the next rotation's key gets another one.
  const kid = values.kid ?? `k${new Date().toISOString().slice(0, 10).replaceAll("-", "")}`;
  const entry = generateMasterKey(kid);
  try {
    await parseMasterKeys(entry); // the Worker's own rules for a kid
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(`--kid ${kid}: ${e.problem.replace(/^entry 1: /, "")}`);
    throw e;
  }
  io.stdout(`${entry}\n`);
  return EXIT.ok;
}

async function adminTokenNew(args: string[], io: Io): Promise<number> {
  parseCommand(args, {});
  io.stdout(`${randomHex(32)}\n`);
  return EXIT.ok;
}

async function tokenKeyNew(args: string[], io: Io): Promise<number> {
  parseCommand(args, {});
  const { privateKey } = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])) as CryptoKeyPair;
  const { kty, crv, x, y, d } = (await crypto.subtle.exportKey("jwk", privateKey)) as JsonWebKey;
  // The shape npm start writes to .dev.vars: the private JWK's members and a random kid, on one line.
  io.stdout(`${JSON.stringify({ kty, crv, x, y, d, kid: randomHex(8) })}\n`);
  return EXIT.ok;
}

export const keyCommands: Command[] = [
  {
    name: "master-key new",
    synopsis: "[--kid KID]",
    summary: "print a new KBS_MASTER_KEY entry kid:base64",
    help: `  --kid      its key id, 1-32 characters A-Z a-z 0-9 . _ - (default: k<today's date>, e.g. k20260601)

Prints kid:base64 of 32 random bytes: \`kbs master-key new | npx wrangler secret put KBS_MASTER_KEY\`.
To rotate, set KBS_MASTER_KEY to the new entry, a comma, and the old value (the first entry seals new
secrets, the others only open old ones), run \`kbs rewrap\`, then drop the old entry.`,
    run: masterKeyNew,
  },
  {
    name: "admin-token new",
    synopsis: "",
    summary: "print a new random ADMIN_TOKEN",
    help: "Prints 32 random bytes as hex: `kbs admin-token new | npx wrangler secret put ADMIN_TOKEN`.",
    run: adminTokenNew,
  },
  {
    name: "token-key new",
    synopsis: "",
    summary: "print a new TOKEN_SIGNING_KEY (private P-256 JWK)",
    help: `Prints a private P-256 JWK with a random kid on one line, as npm start makes it:
\`kbs token-key new | npx wrangler secret put TOKEN_SIGNING_KEY\`. It signs the Trustee protocol's attestation
tokens (ES256); its public half is served at /kbs/v0/.well-known/jwks.json.`,
    run: tokenKeyNew,
  },
];
