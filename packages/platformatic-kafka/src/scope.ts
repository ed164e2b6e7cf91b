import { type InstrumentationScope, MESSAGING_SYSTEM } from '@hoptrace/core/adapter';
import packageJson from '../package.json' with { type: 'json' };

/** What every @platformatic/kafka wrapper tells core about itself: scope name, version, system. */
export const PLATFORMATIC_KAFKA_SCOPE: InstrumentationScope = {
  name: '@hoptrace/platformatic-kafka',
  version: packageJson.version,
  system: MESSAGING_SYSTEM.kafka,
};
