export {
  deidentifyDicom,
  appliedAction,
  UidMap,
  BASIC_PROFILE_EDITION,
  BASIC_PROFILE_ROW_COUNT,
  type AppliedAction,
  type DeidentifyOptions,
  type DeidentifyResult,
} from './deidentify.js';
export { BASIC_PROFILE_ROWS, type ProfileRow } from './basic-profile-2024b.js';
export { sha256 } from './sha256.js';
