import { Readable } from 'node:stream';

/**
 * A producer shaped like @platformatic/kafka's: records what it was asked to send. `options` are
 * added to the client options it was made with (`bootstrapBrokers`...).
 */
export function fakeProducer(serializers?: Record<string, unknown>, options?: Record<string, unknown>) {
  const sent: Array<{ messages: Array<Record<string, unknown>> }> = [];
  const producer = {
    clientId: 'fake-producer',
    failWith: undefined as unknown,
    send(
      options: { messages: Array<Record<string, unknown>> },
      callback?: (e: unknown, r?: unknown) => void,
    ) {
      sent.push(options);
      const reply = { offsets: [{ topic: 't', partition: 2, offset: 41n }] };
      if (callback) {
        setImmediate(() => (producer.failWith ? callback(producer.failWith) : callback(null, reply)));
        return undefined;
      }
      return producer.failWith ? Promise.reject(producer.failWith) : Promise.resolve(reply);
    },
    beginTransaction: async () => ({
      send: producer.send,
      commit: async () => undefined,
      abort: async () => undefined,
      cancel: async () => undefined,
      addOffset: async (_message: unknown) => undefined,
    }),
    close: async () => undefined,
    [Symbol('plt.kafka.base.options')]: { serializers, ...options },
  };
  return { producer, sent };
}

/** A consumer shaped like @platformatic/kafka's, whose stream the test feeds by hand. */
export function fakeConsumer() {
  const stream = Object.assign(new Readable({ objectMode: true, read() {} }), {
    close: async () => {
      stream.destroy();
    },
  });
  const consumer = {
    clientId: 'fake-consumer',
    groupId: 'fake-group',
    consume: async () => stream,
    close: async () => undefined,
    commit: async () => undefined,
  };
  return { consumer, stream };
}

/** A received message as the client hands it out. */
export function message(headers: Map<unknown, unknown>, offset = 0n) {
  return { topic: 't', partition: 0, offset, key: 'k', value: 'v', timestamp: BigInt(Date.now()), headers };
}
