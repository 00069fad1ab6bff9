export * from "./types";
export { caCanonicalBytes, decodeCaCertificate, decodeSevCertificate, encodeCaCertificate, encodeSevCertificate, SEV_SIGNED_SIZE } from "./certs";
export { verifyCaPair, verifySevChain } from "./chain";
export { challengeExtraParams, parseLaunchMeasurement, parseSevPolicy, parseSevRequest, policyBytes, secretPacketJson, sevChainToJson } from "./json";
export { createLaunchSession, expectedMeasure, kdf, ownerDhCertificate, sealSecret, sessionBlob, SEV_SECRET_SLOT, verifyLaunchMeasurement } from "./launch";
export { arkFingerprint, PINNED_SEV_ARKS, sevTrustAnchors } from "./trust";
