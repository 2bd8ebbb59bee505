export { type Emission, type EmissionConfig, openEmission } from './emission.js';
export { type EmissionStats, writtenOnly } from './emission-stats.js';
export { type EmitComponent, type EmitConfig, emitConfigShape } from './emit-config.js';
