/**
 * kafkajs's log for the pipeline: its own JSON lines on stderr, as its default logger writes them,
 * without the coordinator errors it logs at ERROR and then retries by itself while a broker that
 * just started elects the group coordinator (the demo starts Kafka; those lines said nothing wrong).
 *
 * @packageDocumentation
 */
import type { logCreator } from 'kafkajs';

/** Errors kafkajs retries on its own, while a fresh broker's group coordinator comes up. */
const RETRIED_WHILE_STARTING: ReadonlySet<string> = new Set([
  'The group coordinator is not available',
  "The coordinator is loading and hence can't process requests",
  'This is not the correct coordinator for this group',
]);

/** A kafkajs `logCreator` that leaves out the coordinator errors kafkajs retries at startup. */
export const pipelineKafkaLog: logCreator = () => (entry) => {
  const { label, log } = entry;
  if (typeof log.error === 'string' && RETRIED_WHILE_STARTING.has(log.error)) return;
  console.error(JSON.stringify({ level: label, ...log }));
};
