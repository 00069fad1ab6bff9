import { parseMasterKeys, type MasterKeyring } from "../crypto/seal";

let cache: { source: string; ring: Promise<MasterKeyring> } | undefined;

/** The master keyring from KBS_MASTER_KEY, imported once per isolate (again only if the secret changes). */
export function masterKeys(value: string | undefined): Promise<MasterKeyring> {
  const source = value ?? "";
  if (cache?.source !== source) {
    const ring = parseMasterKeys(value);
    // A bad value must not stay cached as a rejected promise beyond this call's error report.
    ring.catch(() => (cache = undefined));
    cache = { source, ring };
  }
  return cache.ring;
}
