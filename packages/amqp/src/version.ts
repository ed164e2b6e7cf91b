/** The instrumentation scope name hoptrace's amqplib tracer and meter use. */
export const SCOPE_NAME = '@hoptrace/amqp';
/** The package version reported as the instrumentation scope version. */
export const SCOPE_VERSION = '0.0.0';
