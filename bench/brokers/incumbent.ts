// Registration of an incumbent's require-time instrumentation (the OpenTelemetry contrib ones patch
// the client module when it is first required, so this runs before the suite requires it).
import type { TracerProvider } from '@opentelemetry/api';
import type * as Instrumentation from '@opentelemetry/instrumentation';

/**
 * Registers `instrumentation` with the bench's tracer provider.
 *
 * @param require - the child's CommonJS require (the suite requires its client through it).
 * @param instrumentation - e.g. `new KafkaJsInstrumentation()`.
 * @param tracerProvider - the bench SDK's provider.
 */
export function registerRequireTime(
  require: NodeJS.Require,
  instrumentation: Instrumentation.Instrumentation,
  tracerProvider: TracerProvider,
): void {
  const { registerInstrumentations } = require('@opentelemetry/instrumentation') as typeof Instrumentation;
  registerInstrumentations({ instrumentations: [instrumentation], tracerProvider });
}
