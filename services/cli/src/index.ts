export { type TapwireConfig, tapwireConfigSchema } from './cli-config.js';
export { buildProgram, runCli } from './program.js';
