export type * from './types.js';
export { ConfigError, InvalidValueError } from './errors.js';
export { parseDuration, parseSize, DURATION_UNITS, SIZE_UNITS } from './durations.js';
export { loadConfig, readRawConfig, findConfigFiles, serverNameProblem } from './load.js';
export type { LoadConfigOptions, RawConfig, ConfigFile } from './load.js';
export { generateConfig, generateLogConfig, writeGeneratedFiles, randomSecret } from './generate.js';
export type { GenerateConfigOptions, WriteGeneratedFilesResult } from './generate.js';
export { readLogConfigLevel, toPinoLevel } from './log-config.js';
export { SYNAPSE_KEYS, AXON_KEYS, AXON_IMPLEMENTED_KEYS } from './synapse-keys.js';
