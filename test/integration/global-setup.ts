import { infraUp } from '@tapwire/infra';
import { infraConfig } from '../support/infra.js';

/**
 * Integration tests need the real servers: start them if they are not running (idempotent), and
 * leave them running afterwards; `.ci/run` and `tapwire infra down` stop them.
 */
export default async function setup(): Promise<void> {
  await infraUp(infraConfig(), (line) => process.stdout.write(`[infra] ${line}\n`));
}
