/**
 * An index of what the event core offers: pure functions over JSON-shaped
 * events. Code in src/ and the tests import the modules themselves (each
 * names what it uses); this file is the core's table of contents, for
 * readers and for code outside the project. See docs/ARCHITECTURE.md
 * ("The event core").
 */
export {
  ROOM_VERSIONS,
  DEFAULT_ROOM_VERSION,
  roomVersion,
  requireRoomVersion,
  UnsupportedRoomVersionError,
  type RoomVersion,
  type EventIdFormat,
  type StateResAlgorithm,
} from './room-versions.js';
export { stateMapKey, splitStateMapKey, referencedIds, type PDU, type JsonValue, type JsonObject, type Signatures, type AuthResult, type StateMapKey } from './pdu.js';

// --- event-core primitives: canonical JSON, base64, hashes, ids, redaction, signing ---
export {
  canonicalJson,
  canonicalJsonBytes,
  canonicalJsonWithout,
  compareCodePoints,
  CanonicalJsonError,
  MAX_CANONICAL_DEPTH,
  type CanonicalJsonErrorKind,
} from './canonical-json.js';
export {
  parseStrictJson,
  parseJsonBody,
  assertCanonicalCompatible,
  isCanonicalCompatible,
  JsonParseError,
  type JsonParseErrorKind,
  type ParseStrictJsonOptions,
} from './json-parse.js';
export { encodeBase64, encodeBase64Url, decodeBase64, decodeBase64Url, Base64Error } from './base64.js';
export { contentHash, contentHashBytes, checkContentHash, referenceHash, sha256 } from './hashes.js';
export { eventId, newV1EventId, roomIdFromCreateEvent, EventIdError } from './event-id.js';
export { redact, redactWith } from './redaction.js';
export {
  generateSigningKey,
  parseSigningKeyFile,
  formatSigningKeyFile,
  signingKeyFromSeed,
  publicKeyFromSeed,
  privateKeyFromSeed,
  publicKeyObject,
  signJson,
  signJsonWithKey,
  verifyJson,
  verifyJsonWithKey,
  findSignature,
  SigningKeyFileError,
  SigningError,
  type SigningKey,
} from './signing.js';
export {
  validateEventFormat,
  assertEventFormat,
  isValidServerName,
  serverNameOf,
  EventFormatError,
  MAX_EVENT_BYTES,
  MAX_ID_BYTES,
  type EventFormatProblem,
} from './event-format.js';
export {
  hashAndSignEvent,
  addEventSignature,
  verifyEventSignature,
  requiredSigningServers,
  checkEventSignatures,
  SigningServersError,
  type ServerKeys,
  type EventSignatureCheck,
} from './event-signing.js';

export { serverAllowedByAcl } from './server-acl.js';

// --- auth rules (room versions 1-12) ---
export {
  checkAuth,
  checkAuthAgainstState,
  checkCreateEvent,
  authEventSelection,
  isSelectedAuthEvent,
  userPowerLevel,
  sendLevel,
  namedLevel,
  parseLevel,
  roomCreators,
  isRoomCreator,
  isPowerEvent,
  membershipOf,
  isValidUserId,
  LEVEL_KEYS,
  LEVEL_DEFAULTS,
  CREATOR_DEFAULT_LEVEL,
  type LevelKey,
  type CheckAuthOptions,
  type AuthCheckOptions,
  type StateLookup,
} from './auth/index.js';

// --- state resolution (room versions 1-12) ---
export { resolveState, StateResolutionError, type ResolveStateOptions, type StateEntry } from './state-res/index.js';
