import {
  ATTR_KAFKA_MESSAGE_KEY,
  ATTR_KAFKA_OFFSET,
  ATTR_MESSAGING_DESTINATION_PARTITION_ID,
  addKafkaMessageAttributes,
} from '@hoptrace/core/adapter';
import {
  ATTR_HOPTRACE_MESSAGE_UNRESOLVED,
  type KafkaConsumerOptions,
  type KafkaOptions,
  type KafkaProducerOptions,
  traceConsumer,
  traceKafka,
  traceProducer,
  withMessageContext,
} from '@hoptrace/kafka';
import {
  allUndefined,
  onlySpan,
  parentSpanId,
  spanShapesOf,
  spansNamed,
  useTestTracing,
} from '@hoptrace/test-kit';
import { type Attributes, context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Kafka, logLevel, type RecordMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  CONSUMER_OPTION_KEYS,
  KAFKA_OPTION_KEYS,
  PRODUCER_OPTION_KEYS,
  parseBroker,
} from '../src/options.ts';
import { batchPayload, fakeConsumer, fakeProducer, message } from './helpers.ts';

const tracing = useTestTracing();
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('options', () => {
  it.each([
    [{ captureKeys: 'no' }, 'Expected `captureKeys` to be a boolean, got "no"'],
    [{ createSpans: 1 }, 'Expected `createSpans` to be a boolean, got 1'],
    [{ clientId: '' }, 'Expected `clientId` to be a non-empty string, got ""'],
    [{ broker: 'nohost' }, 'Expected `broker` to be "host:port", got "nohost"'],
    [{ relation: 'sibling' }, "Expected `relation` to be one of 'parent', 'link', 'root', got \"sibling\""],
  ])('traceProducer rejects %j at wrap time', (options, text) => {
    expect(() => traceProducer(fakeProducer().producer, options as never)).toThrow(new TypeError(text));
  });

  it('traceConsumer rejects a negative maxBatchLinks with the value received', () => {
    expect(() => traceConsumer(fakeConsumer().consumer, { maxBatchLinks: -1 })).toThrow(
      new TypeError('Expected `maxBatchLinks` to be an integer >= 0, got -1'),
    );
  });

  it('parses brokers, IPv6 included', () => {
    expect(parseBroker('kafka:9092')).toEqual({ address: 'kafka', port: 9092 });
    expect(parseBroker('[::1]:19092')).toEqual({ address: '::1', port: 19092 });
    expect(parseBroker('kafka:99999')).toBeUndefined();
  });

  it.each(['kafka:0x10', 'kafka:1e3', 'kafka: 80', 'kafka:80.0', 'kafka:+80'])(
    'refuses a broker whose port is not plain digits (%s)',
    (broker) => {
      expect(parseBroker(broker)).toBeUndefined();
      expect(() => traceProducer(fakeProducer().producer, { broker })).toThrow(
        new TypeError(`Expected \`broker\` to be "host:port", got ${JSON.stringify(broker)}`),
      );
    },
  );
  it.each([
    ['user:secret@kafka-1:9092', '"***@kafka-1:9092"'],
    ['kafka://user:secret@kafka-1:9092', '"kafka://***@kafka-1:9092"'],
    ['kafka://kafka-1:9092', '"kafka://kafka-1:9092"'],
  ])(
    'refuses a broker with credentials or a scheme (%s), leaving the credentials out of the message',
    (broker, shown) => {
      expect(parseBroker(broker)).toBeUndefined();
      expect(() => traceProducer(fakeProducer().producer, { broker })).toThrow(
        new TypeError(`Expected \`broker\` to be "host:port", got ${shown}`),
      );
    },
  );

  it('refuses an option it does not take, naming the one meant', () => {
    expect(() => traceProducer(fakeProducer().producer, { captureKey: true } as never)).toThrow(
      new TypeError('Unknown option `captureKey` for traceProducer (did you mean `captureKeys`?)'),
    );
    expect(() => traceConsumer(fakeConsumer().consumer, { batchSpan: 'batch' } as never)).toThrow(
      new TypeError('Unknown option `batchSpan` for traceConsumer (did you mean `batchSpans`?)'),
    );
    // A producer option is not a consumer's, and traceKafka gets the group from consumer().
    expect(() => traceConsumer(fakeConsumer().consumer, { createSpans: true } as never)).toThrow(
      /Unknown option `createSpans` for traceConsumer/,
    );
    const kafka = { producer: () => fakeProducer().producer, consumer: () => fakeConsumer().consumer };
    expect(() => traceKafka(kafka as never, { groupId: 'g' } as never)).toThrow(
      /Unknown option `groupId` for traceKafka/,
    );
    expect(() =>
      traceKafka(kafka as never, { createSpans: true, batchSpans: 'batch', relation: 'link' }),
    ).not.toThrow();
  });
});

describe('an option set to undefined is not set', () => {
  const producerOptions = allUndefined<KafkaProducerOptions>(PRODUCER_OPTION_KEYS);
  const consumerOptions = allUndefined<KafkaConsumerOptions>(CONSUMER_OPTION_KEYS);
  const kafkaOptions = allUndefined<KafkaOptions>(KAFKA_OPTION_KEYS);

  /** The shapes of the spans `run` makes. */
  const shapesOf = (run: () => Promise<unknown>) => spanShapesOf(tracing.current, run);

  it('a wrapper given every option as undefined traces as one given {}', async () => {
    const send = (options: KafkaProducerOptions) => async () => {
      const producer = traceProducer(fakeProducer().producer, options);
      await producer.send({ topic: 't', messages: [{ key: 'k', value: 'a' }, { value: 'b' }] });
    };
    expect(await shapesOf(send(producerOptions))).toEqual(await shapesOf(send({})));
    const consume = (options: KafkaConsumerOptions) => async () => {
      const fake = fakeConsumer();
      await traceConsumer(fake.consumer, options).run({ eachMessage: async () => undefined });
      await fake.config?.eachMessage?.({
        topic: 't',
        partition: 2,
        message: message(7, { traceparent: TRACEPARENT, baggage: 'tenant=acme' }, Buffer.from('key')),
        heartbeat: async () => undefined,
        pause: () => () => undefined,
      });
      const batched = fakeConsumer();
      await traceConsumer(batched.consumer, options).run({
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) resolveOffset(m.offset);
        },
      });
      await batched.config?.eachBatch?.(
        batchPayload('t', [message(1, { traceparent: TRACEPARENT }), message(2)]).payload,
      );
    };
    const shapes = await shapesOf(consume(consumerOptions));
    expect(shapes.length).toBeGreaterThan(0);
    expect(shapes).toEqual(await shapesOf(consume({})));
    const kafka = { producer: () => fakeProducer().producer, consumer: () => fakeConsumer().consumer };
    const viaKafka = (options: KafkaOptions) => async () => {
      await traceKafka(kafka as unknown as Kafka, options)
        .producer()
        .send({ topic: 't', messages: [{ value: 'a' }] });
    };
    expect(await shapesOf(viaKafka(kafkaOptions))).toEqual(await shapesOf(viaKafka({})));
  });
});

describe('wrapping', () => {
  it('is idempotent for producers, consumers, Kafka clients and transactions', async () => {
    const producer = traceProducer(fakeProducer().producer);
    expect(traceProducer(producer)).toBe(producer);
    const consumer = traceConsumer(fakeConsumer().consumer);
    expect(traceConsumer(consumer)).toBe(consumer);
    const kafka = traceKafka(new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING }));
    expect(traceKafka(kafka)).toBe(kafka);
    const fromKafka = kafka.producer();
    expect(traceProducer(fromKafka)).toBe(fromKafka);
    const transaction = await producer.transaction();
    expect(transaction.send).not.toBe((await fakeProducer().producer.transaction()).send);
  });

  it('refuses what is not the kafkajs client it expects, naming the parameter and what is missing', () => {
    const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING });
    const wrong: Array<[string, unknown, RegExp]> = [
      ['null', null, /got null$/],
      ['a plain object', {}, /got an object without send\(\)$/],
      ['the Kafka client (kafkajs names its class Client)', kafka, /got a Client without send\(\)$/],
      ['a consumer', fakeConsumer().consumer, /got an object without send\(\)$/],
      [
        'a hostile Proxy',
        new Proxy(
          {},
          {
            get: () => {
              throw new Error('trap');
            },
            getPrototypeOf: () => {
              throw new Error('trap');
            },
          },
        ),
        /got an object without send\(\)$/,
      ],
    ];
    for (const [, value, got] of wrong) {
      expect(() => traceProducer(value as never)).toThrow(TypeError);
      expect(() => traceProducer(value as never)).toThrow(/^Expected `producer` to be a kafkajs Producer, /);
      expect(() => traceProducer(value as never)).toThrow(got);
    }
    expect(() => traceConsumer(fakeProducer().producer as never)).toThrow(
      new TypeError('Expected `consumer` to be a kafkajs Consumer, got an object without run()'),
    );
    expect(() => traceConsumer(undefined as never)).toThrow(
      new TypeError('Expected `consumer` to be a kafkajs Consumer, got undefined'),
    );
    // a BullMQ Worker: run() too, but no subscribe(). It was wrapped, and run() handed it a config it ignores.
    class Worker {
      run() {}
      close() {}
      on() {}
    }
    expect(() => traceConsumer(new Worker() as never)).toThrow(
      new TypeError('Expected `consumer` to be a kafkajs Consumer, got a Worker without subscribe()'),
    );
    expect(() => traceKafka(fakeProducer().producer as never)).toThrow(
      new TypeError('Expected `kafka` to be a kafkajs Kafka client, got an object without producer()'),
    );
  });

  it('validates the options of a call that returns an existing wrapper too', () => {
    const raw = fakeProducer().producer;
    const producer = traceProducer(raw);
    const consumer = traceConsumer(fakeConsumer().consumer);
    const kafka = traceKafka(new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING }));
    const bad = { captureKeys: 'no' } as never;
    const message = new TypeError('Expected `captureKeys` to be a boolean, got "no"');
    expect(() => traceProducer(producer, bad)).toThrow(message);
    expect(() => traceProducer(raw, bad)).toThrow(message);
    expect(() => traceConsumer(consumer, bad)).toThrow(message);
    expect(() => traceKafka(kafka, bad)).toThrow(message);
    expect(traceProducer(raw, { captureKeys: true })).toBe(producer); // valid: still the first wrapper
  });

  it("passes every other property through, calling the raw producer's own methods on it", async () => {
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer);
    expect(producer.isIdempotent()).toBe(false);
    let receiver: unknown;
    const raw = fake.producer as unknown as { connect: () => Promise<void> };
    raw.connect = async function (this: unknown) {
      receiver = this;
    };
    await producer.connect();
    expect(receiver).toBe(fake.producer);
  });
});

describe('producer', () => {
  it('never mutates the caller record, messages or headers', async () => {
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer, { clientId: 'c1', broker: 'k:9092', createSpans: true });
    const headers = { own: 'x' };
    const messages = [{ value: 'a', headers }, { value: 'b' }];
    const record = { topic: 't', messages };
    await producer.send(record);
    expect(record.messages).toBe(messages);
    expect(messages[0]).toEqual({ value: 'a', headers: { own: 'x' } });
    expect(messages[1]).toEqual({ value: 'b' });
    const sent = fake.sent[0]?.messages ?? [];
    expect(sent[0]?.headers?.own).toBe('x');
    expect(typeof sent[0]?.headers?.traceparent).toBe('string');
    const creates = spansNamed(tracing.current.spans(), 'create t');
    expect(creates.map((c) => c.attributes[ATTR_KAFKA_OFFSET])).toEqual([10, 11]);
    expect(sent.map((m) => m.headers?.traceparent)).toEqual(
      creates.map((c) => `00-${c.spanContext().traceId}-${c.spanContext().spanId}-01`),
    );
    const send = onlySpan(tracing.current.spans(), 'send t');
    expect(send.attributes).toMatchObject({
      'messaging.client.id': 'c1',
      'server.address': 'k',
      'server.port': 9092,
    });
  });

  it("one send span's context reaches every message of a call; a field a message sets itself stays as sent", async () => {
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer);
    const messages = [
      { value: 'a' },
      { value: 'b', headers: { traceparent: Buffer.from('00-not-a-context') } },
      { value: 'c', headers: { baggage: 'mine=1' } },
      { value: 'd' },
    ];
    const bag = propagation.createBaggage({ tenant: { value: 'acme' } });
    await context.with(propagation.setBaggage(context.active(), bag), () =>
      producer.send({ topic: 't', messages }),
    );
    const { traceId, spanId } = onlySpan(tracing.current.spans(), 'send t').spanContext();
    const expected = `00-${traceId}-${spanId}-01`;
    const sent = (fake.sent[0]?.messages ?? []).map((m) => m.headers);
    expect(sent[0]).toEqual({ traceparent: expected, baggage: 'tenant=acme' });
    expect(String(sent[1]?.traceparent)).toBe('00-not-a-context');
    expect(sent[1]?.baggage).toBe('tenant=acme');
    expect(sent[2]).toEqual({ baggage: 'mine=1', traceparent: expected });
    expect(sent[3]).toEqual({ traceparent: expected, baggage: 'tenant=acme' });
    expect(sent[3]).not.toBe(sent[0]); // every message gets its own headers object
    expect(messages[2]?.headers).toEqual({ baggage: 'mine=1' });
  });

  it('fails send and create spans with error.type from the kafkajs error and rethrows it', async () => {
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer, { createSpans: true });
    const error = Object.assign(new Error('This server does not host this topic-partition'), {
      type: 'UNKNOWN_TOPIC_OR_PARTITION',
    });
    fake.failWith = error;
    await expect(producer.send({ topic: 't', messages: [{ value: 'a' }, { value: 'b' }] })).rejects.toBe(
      error,
    );
    const spans = tracing.current.spans();
    expect(spans).toHaveLength(3);
    for (const span of spans) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes['error.type']).toBe('UNKNOWN_TOPIC_OR_PARTITION');
    }
  });

  it('takes error.type from the cause when kafkajs wraps the protocol error', async () => {
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer);
    const cause = Object.assign(new Error('leader moved'), { type: 'NOT_LEADER_OR_FOLLOWER' });
    const wrapper = new Error('retries exceeded', { cause });
    wrapper.name = 'KafkaJSNumberOfRetriesExceeded';
    fake.failWith = wrapper;
    await expect(producer.send({ topic: 't', messages: [{ value: 'a' }] })).rejects.toBe(wrapper);
    expect(onlySpan(tracing.current.spans(), 'send t').attributes['error.type']).toBe(
      'NOT_LEADER_OR_FOLLOWER',
    );
  });

  it('traces transaction sends and passes commit through', async () => {
    const fake = fakeProducer();
    const producer = traceProducer(fake.producer);
    const tx = await producer.transaction();
    await tx.sendBatch({ topicMessages: [{ topic: 'a', messages: [{ value: '1', partition: 0 }] }] });
    await tx.commit();
    expect(fake.committed).toBe(true);
    const send = onlySpan(tracing.current.spans(), 'send a');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.attributes[ATTR_MESSAGING_DESTINATION_PARTITION_ID]).toBe('0');
    expect(send.attributes[ATTR_KAFKA_OFFSET]).toBe(10);
  });

  it.each([
    ['abort', 'aborted', SpanStatusCode.ERROR],
    ['commit', 'committed', SpanStatusCode.UNSET],
  ] as const)(
    'a send still in flight at %s ends with that outcome when it settles, not never',
    async (how, outcome, status) => {
      const { fake, resolveSend } = await producerWithSendInFlight();
      const tx = await traceProducer(fake.producer).transaction();
      const inFlight = tx.send({ topic: 'late', messages: [{ value: '1' }] });
      await tx[how]();
      expect(tracing.current.openSpans().map((s) => s.name)).toEqual(['send late']);
      resolveSend([]);
      await inFlight;
      expect(tracing.current.openSpans()).toHaveLength(0);
      const send = onlySpan(tracing.current.spans(), 'send late');
      expect(send.attributes['hoptrace.kafka.transaction.outcome']).toBe(outcome);
      expect(send.status.code).toBe(status);
    },
  );

  it('a producer disconnecting with a send in flight: the send ends as unknown when it settles', async () => {
    const { fake, resolveSend } = await producerWithSendInFlight();
    const producer = traceProducer(fake.producer);
    const tx = await producer.transaction();
    const inFlight = tx.send({ topic: 'late', messages: [{ value: '1' }] });
    await producer.disconnect();
    resolveSend([]);
    await inFlight;
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(
      onlySpan(tracing.current.spans(), 'send late').attributes['hoptrace.kafka.transaction.outcome'],
    ).toBe('unknown');
  });

  it('leaves keys out with captureKeys: false', async () => {
    const producer = traceProducer(fakeProducer().producer, { captureKeys: false });
    await producer.send({ topic: 't', messages: [{ key: 'secret', value: 'a' }] });
    expect(onlySpan(tracing.current.spans(), 'send t').attributes[ATTR_KAFKA_MESSAGE_KEY]).toBeUndefined();
  });

  it('decodes keys only when they are valid UTF-8', () => {
    const keyOf = (key: unknown) => {
      const out: Attributes = {};
      addKafkaMessageAttributes(out, { key }, true, false);
      return out[ATTR_KAFKA_MESSAGE_KEY];
    };
    expect(keyOf('k')).toBe('k');
    expect(keyOf(Buffer.from('ключ'))).toBe('ключ');
    expect(keyOf(Buffer.from([0xff, 0xfe]))).toBeUndefined();
    expect(keyOf(null)).toBeUndefined();
  });
});

describe('consumer', () => {
  it('eachMessage: parents the process span by the creation context and passes kafkajs payload through', async () => {
    const fake = fakeConsumer();
    const consumer = traceConsumer(fake.consumer, { groupId: 'g1', captureKeys: true });
    let active: string | undefined;
    const seen: unknown[] = [];
    const config = {
      autoCommit: false,
      eachMessage: async (payload: unknown) => {
        seen.push(payload);
        active = trace.getActiveSpan()?.spanContext().spanId;
      },
    };
    await consumer.run(config);
    expect(fake.config?.autoCommit).toBe(false);
    expect(fake.config?.eachMessage).not.toBe(config.eachMessage);
    const payload = {
      topic: 't',
      partition: 2,
      message: message(7, { traceparent: TRACEPARENT }, Buffer.from('key')),
      heartbeat: async () => undefined,
      pause: () => () => undefined,
    };
    await fake.config?.eachMessage?.(payload);
    expect(seen[0]).toBe(payload);
    const span = onlySpan(tracing.current.spans(), 'process t');
    expect(active).toBe(span.spanContext().spanId);
    expect(parentSpanId(span)).toBe('00f067aa0ba902b7');
    expect(span.attributes).toMatchObject({
      'messaging.consumer.group.name': 'g1',
      'messaging.destination.partition.id': '2',
      'kafka.offset': 7,
      'kafka.message.key': 'key',
    });
  });

  it('eachBatch: resolveOffset reaches kafkajs first and ends message spans up to that offset', async () => {
    const fake = fakeConsumer();
    const consumer = traceConsumer(fake.consumer);
    const messages = [message(0), message(1), message(2)];
    const { payload, resolved, heartbeat } = batchPayload('t', messages);
    let openAfterFirst = -1;
    await consumer.run({
      eachBatch: async (p) => {
        expect(p.heartbeat).toBe(heartbeat);
        expect(p.batch).toBe(payload.batch);
        p.resolveOffset('1');
        openAfterFirst = tracing.current.openSpans().length;
        withMessageContext(messages[2] as never, () => undefined);
      },
    });
    await fake.config?.eachBatch?.(payload);
    expect(resolved).toEqual(['1']);
    // Batch span + message 2 (started on the resolve of 1).
    expect(openAfterFirst).toBe(2);
    const spans = spansNamed(tracing.current.spans(), 'process t');
    expect(spans).toHaveLength(4);
    for (const span of spans) expect(span.attributes[ATTR_HOPTRACE_MESSAGE_UNRESOLVED]).toBeUndefined();
  });

  it.each([
    [null, true],
    [0, true],
    [undefined, false],
    [1, false],
  ])(
    'eachBatch: eachBatchAutoResolve %j is read as kafkajs reads it (unresolved messages marked: %j)',
    async (setting, marked) => {
      const fake = fakeConsumer();
      const consumer = traceConsumer(fake.consumer);
      const { payload } = batchPayload('t', [message(0), message(1)]);
      await consumer.run({ eachBatchAutoResolve: setting as never, eachBatch: async () => undefined });
      expect(fake.config?.eachBatchAutoResolve).toBe(setting);
      await fake.config?.eachBatch?.(payload);
      const spans = spansNamed(tracing.current.spans(), 'process t').filter(
        (s) => s.attributes[ATTR_HOPTRACE_MESSAGE_UNRESOLVED] === true,
      );
      expect(spans).toHaveLength(marked ? 2 : 0);
    },
  );

  it('eachBatch: stop() ends spans of a batch that never returns', async () => {
    const fake = fakeConsumer();
    const consumer = traceConsumer(fake.consumer);
    const { payload } = batchPayload('t', [message(0), message(1)]);
    await consumer.run({ eachBatch: () => new Promise(() => undefined) });
    void fake.config?.eachBatch?.(payload);
    expect(tracing.current.openSpans()).toHaveLength(2);
    await consumer.stop();
    expect(fake.stopped).toBe(true);
    expect(tracing.current.openSpans()).toHaveLength(0);
    const spans = spansNamed(tracing.current.spans(), 'process t');
    expect(spans.filter((s) => s.attributes[ATTR_HOPTRACE_MESSAGE_UNRESOLVED] === true)).toHaveLength(2);
  });
});

describe('legacy attribute names', () => {
  it('also emits the older names when legacyAttributes is on', async () => {
    const producer = traceProducer(fakeProducer().producer, { legacyAttributes: true, captureKeys: true });
    await producer.send({ topic: 't', messages: [{ key: 'k', value: 'a', partition: 0 }] });
    const send = onlySpan(tracing.current.spans(), 'send t');
    expect(send.attributes).toMatchObject({
      'messaging.system.name': 'kafka',
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.operation': 'publish',
      'kafka.message.key': 'k',
      'messaging.kafka.message.key': 'k',
      'kafka.offset': 10,
      // The name before 1.45 (what @opentelemetry/instrumentation-kafkajs emits) and the one before it.
      'messaging.kafka.offset': 10,
      'messaging.kafka.message.offset': 10,
      'messaging.destination.partition.id': '0',
      'messaging.kafka.destination.partition': 0,
    });
  });
});

describe('legacy attribute names on links', () => {
  it("a multi-message send's links to the messages' own contexts carry the older names too", async () => {
    const producer = traceProducer(fakeProducer().producer, { legacyAttributes: true, captureKeys: true });
    const own = (i: number) => `00-${'a'.repeat(31)}${i}-${'b'.repeat(15)}${i}-01`;
    await producer.send({
      topic: 't',
      messages: [
        { key: 'k1', value: 'a', headers: { traceparent: own(1) } },
        { key: 'k2', value: null, headers: { traceparent: own(2) } },
      ],
    });
    const send = onlySpan(tracing.current.spans(), 'send t');
    expect(send.links.map((l) => l.context.spanId)).toEqual([`${'b'.repeat(15)}1`, `${'b'.repeat(15)}2`]);
    expect(send.links.map((l) => l.attributes)).toEqual([
      { 'kafka.message.key': 'k1', 'messaging.kafka.message.key': 'k1' },
      {
        'kafka.message.key': 'k2',
        'messaging.kafka.message.key': 'k2',
        'kafka.message.tombstone': true,
        'messaging.kafka.message.tombstone': true,
      },
    ]);
  });
});

describe('consumer options', () => {
  const payloadFor = (headers: Record<string, string>) => ({
    topic: 't',
    partition: 0,
    message: { ...message(4, headers), value: Buffer.from('12345') },
    heartbeat: async () => undefined,
    pause: () => () => undefined,
  });

  it('copies allow-listed baggage and the body size onto the process span', async () => {
    const fake = fakeConsumer();
    const consumer = traceConsumer(fake.consumer, {
      baggageAttributes: ['tenant.id'],
      captureBodySize: true,
    });
    await consumer.run({ eachMessage: async () => undefined });
    await fake.config?.eachMessage?.(
      payloadFor({ traceparent: TRACEPARENT, baggage: 'tenant.id=acme,secret=x' }),
    );
    const span = onlySpan(tracing.current.spans(), 'process t');
    expect(span.attributes['tenant.id']).toBe('acme');
    expect(span.attributes.secret).toBeUndefined();
    expect(span.attributes['messaging.message.body.size']).toBe(5);
  });

  it('starts a new linked trace once the trace budget is spent', async () => {
    const fake = fakeConsumer();
    const consumer = traceConsumer(fake.consumer, { traceBudget: { maxHops: 2 } });
    await consumer.run({ eachMessage: async () => undefined });
    await fake.config?.eachMessage?.(payloadFor({ traceparent: TRACEPARENT, tracestate: 'hoptrace=2' }));
    const span = onlySpan(tracing.current.spans(), 'process t');
    expect(parentSpanId(span)).toBeUndefined();
    expect(span.spanContext().traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(span.links.map((l) => l.context.spanId)).toEqual(['00f067aa0ba902b7']);
    expect(span.attributes['hoptrace.trace_budget.exceeded']).toBe(true);
  });

  it('withMessageContext records a failure on the message span and rethrows it', async () => {
    const fake = fakeConsumer();
    const consumer = traceConsumer(fake.consumer);
    const messages = [message(0, { traceparent: TRACEPARENT })];
    const { payload } = batchPayload('t', messages);
    const boom = new TypeError('bad message');
    let caught: unknown;
    await consumer.run({
      eachBatch: async () => {
        try {
          withMessageContext(messages[0] as never, () => {
            throw boom;
          });
        } catch (error) {
          caught = error;
        }
      },
    });
    await fake.config?.eachBatch?.(payload);
    expect(caught).toBe(boom);
    const spans = spansNamed(tracing.current.spans(), 'process t');
    const perMessage = spans.find((s) => s.attributes['messaging.batch.message_count'] === undefined);
    const batch = spans.find((s) => s.attributes['messaging.batch.message_count'] === 1);
    expect(perMessage?.status.code).toBe(SpanStatusCode.ERROR);
    expect(perMessage?.attributes['error.type']).toBe('TypeError');
    expect(perMessage && parentSpanId(perMessage)).toBe('00f067aa0ba902b7');
    expect(batch?.status.code).toBe(SpanStatusCode.UNSET);
    expect(batch?.links.map((l) => l.context.spanId)).toEqual(['00f067aa0ba902b7']);
  });

  it('withMessageContext just runs fn for a message hoptrace does not know', () => {
    expect(withMessageContext(message(1) as never, () => 42)).toBe(42);
    expect(tracing.current.spans()).toHaveLength(0);
  });
});

/** A fake producer whose transaction's sends stay in flight until `resolveSend` answers the latest. */
async function producerWithSendInFlight() {
  const fake = fakeProducer();
  let answer: ((reply: RecordMetadata[]) => void) | undefined;
  const rawTransaction = await fake.producer.transaction();
  fake.producer.transaction = async () => ({
    ...rawTransaction,
    send: () =>
      new Promise<RecordMetadata[]>((resolve) => {
        answer = resolve;
      }),
  });
  const resolveSend = (reply: RecordMetadata[]) => {
    if (!answer) throw new Error('no send in flight');
    answer(reply);
  };
  return { fake, resolveSend };
}
