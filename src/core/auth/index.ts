/** The authorisation rules of room versions 1-12. */
export { checkAuth, type CheckAuthOptions } from './check-auth.js';
export { checkAuthAgainstState, checkCreateEvent } from './rules.js';
export { authEventSelection, isSelectedAuthEvent } from './selection.js';
export {
  userPowerLevel,
  sendLevel,
  namedLevel,
  parseLevel,
  roomCreators,
  isRoomCreator,
  LEVEL_KEYS,
  LEVEL_DEFAULTS,
  CREATOR_DEFAULT_LEVEL,
  type LevelKey,
} from './power-levels.js';
export { isPowerEvent } from './power-events.js';
export { membershipOf } from './membership.js';
export { isValidUserId, domainOf } from './ids.js';
export type { StateLookup, AuthCheckOptions } from './types.js';
