import { type InstrumentationScope, MESSAGING_SYSTEM } from '@hoptrace/core/adapter';
import packageJson from '../package.json' with { type: 'json' };

/** What every amqplib wrapper tells core about itself: scope name, version (from package.json at build time), system. */
export const AMQP_SCOPE: InstrumentationScope = {
  name: '@hoptrace/amqp',
  version: packageJson.version,
  system: MESSAGING_SYSTEM.rabbitmq,
};
