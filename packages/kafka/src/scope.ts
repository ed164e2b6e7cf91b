import { type InstrumentationScope, MESSAGING_SYSTEM } from '@hoptrace/core/adapter';
import packageJson from '../package.json' with { type: 'json' };

/** What every Kafka wrapper tells core about itself: scope name, version (from package.json at build time), system. */
export const KAFKA_SCOPE: InstrumentationScope = {
  name: '@hoptrace/kafka',
  version: packageJson.version,
  system: MESSAGING_SYSTEM.kafka,
};
