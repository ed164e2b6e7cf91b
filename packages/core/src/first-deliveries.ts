/**
 * Which Kafka-style deliveries (topic, partition, offset) are a message's first: a client delivers a
 * message again after its handler failed, after a seek back or a restart from the last commit, and
 * a redelivery is not the start of the message's processing (time in queue is recorded once).
 *
 * @packageDocumentation
 */

/**
 * How many topics a {@link FirstDeliveries} remembers; past it the topic noted longest ago is
 * forgotten (a consumer subscribed by pattern may see topics without end).
 */
export const MAX_FIRST_DELIVERY_TOPICS = 1024;

/**
 * The greatest offset noted per topic and partition of one consumer. Memory is bounded by
 * {@link MAX_FIRST_DELIVERY_TOPICS} topics times the partitions the consumer is assigned.
 */
export class FirstDeliveries {
  readonly #topics = new Map<string, Map<number, number>>();

  /**
   * Whether the message at `offset` of `topic`/`partition` lies past every offset noted there
   * before (its first delivery to this consumer); notes it when it does. An offset or partition that
   * is not a number (a string or bigint of one is read) counts as a first delivery and notes nothing.
   * Never throws.
   */
  isFirst(topic: string, partition: unknown, offset: unknown): boolean {
    const at = toNumber(offset);
    const part = toNumber(partition);
    if (at === undefined || part === undefined) return true;
    let partitions = this.#topics.get(topic);
    if (partitions === undefined) {
      if (this.#topics.size >= MAX_FIRST_DELIVERY_TOPICS) {
        const oldest = this.#topics.keys().next().value as string;
        this.#topics.delete(oldest);
      }
      partitions = new Map();
      this.#topics.set(topic, partitions);
    }
    const last = partitions.get(part);
    if (last !== undefined && at <= last) return false;
    partitions.set(part, at);
    return true;
  }
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}
