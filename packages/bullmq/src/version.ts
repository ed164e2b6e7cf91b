/** The instrumentation scope name hoptrace's BullMQ spans and metrics carry. */
export const SCOPE_NAME = '@hoptrace/bullmq';
/** The package version, used as the instrumentation scope version. */
export const VERSION = '0.0.0';
