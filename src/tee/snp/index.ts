// Public API of the pure SEV-SNP verifier.

export * from "./types";
export { appraiseSnp, assertAppraised, type Appraisal, type Expectations } from "./appraise";
export { CERT_TABLE_GUIDS, certificatesFrom, parseCertTable, type CertTableEntry } from "./certtable";
export { parseCrl, verifyCrl, type Crl } from "./crl";
export { parseSnpPolicy, PolicyError, type BitRule, type SnpPolicy } from "./policy";
export {
  decodeGuestPolicy,
  decodePlatformInfo,
  decodeTcb,
  parseReport,
  productFromCpuid,
  REPORT_SIZE,
  SIGNED_SIZE,
  SUPPORTED_VERSIONS,
  tcbHex,
} from "./report";
export { PINNED_ARKS, trustAnchors } from "./trust";
export { clearVerifierCaches, verifySnpReport } from "./verify";
export { fingerprint, parseCertificate, type AmdExtensions, type Certificate } from "./x509";
