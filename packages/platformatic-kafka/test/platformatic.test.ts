import { ATTR_HOPTRACE_BUDGET_EXCEEDED } from '@hoptrace/core';
import {
  DEFAULT_MAX_PROCESSING_MS,
  deadLetterMessage,
  type PlatformaticConsumerOptions,
  type PlatformaticProducerOptions,
  traceConsumer,
  traceProducer,
  withBatchContext,
  withMessageContext,
} from '@hoptrace/platformatic-kafka';
import {
  allUndefined,
  onlySpan,
  parentSpanId,
  spanShapesOf,
  spansNamed,
  useTestTracing,
} from '@hoptrace/test-kit';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { CONSUMER_OPTION_KEYS, PRODUCER_OPTION_KEYS } from '../src/options.ts';
import { fakeConsumer, fakeProducer, message } from './fakes.ts';

const tracing = useTestTracing();
const spans = () => tracing.current.spans();
const TRACE = 'a'.repeat(32);
const PARENT = 'b'.repeat(16);

describe('options', () => {
  it('throws a clear TypeError at wrap time', () => {
    const { consumer } = fakeConsumer();
    expect(() => traceConsumer(consumer, { batchSpans: 'all' as 'batch' })).toThrow(/batchSpans/);
    expect(() => traceConsumer(consumer, { maxProcessingMs: 0 })).toThrow(/maxProcessingMs/);
    expect(() => traceConsumer(consumer, { broker: 'no-port' })).toThrow(/broker/);
    expect(() =>
      traceProducer(fakeProducer().producer, { captureKeys: 'yes' as unknown as boolean }),
    ).toThrow(/captureKeys/);
    expect(DEFAULT_MAX_PROCESSING_MS).toBe(60_000);
  });

  it.each([
    ['user:secret@kafka-1:9092', '"***@kafka-1:9092"'],
    ['kafka://user:secret@kafka-1:9092', '"kafka://***@kafka-1:9092"'],
  ])(
    'refuses a broker with credentials or a scheme (%s), leaving the credentials out of the message',
    (broker, shown) => {
      const text = `Expected \`broker\` to be "host:port", got ${shown}`;
      expect(() => traceProducer(fakeProducer().producer, { broker })).toThrow(new TypeError(text));
      expect(() => traceConsumer(fakeConsumer().consumer, { broker })).toThrow(new TypeError(text));
    },
  );

  it('refuses an option it does not take, naming the one meant', () => {
    expect(() => traceProducer(fakeProducer().producer, { createSpan: true } as never)).toThrow(
      new TypeError('Unknown option `createSpan` for traceProducer (did you mean `createSpans`?)'),
    );
    expect(() => traceConsumer(fakeConsumer().consumer, { maxProcessingMS: 5 } as never)).toThrow(
      new TypeError('Unknown option `maxProcessingMS` for traceConsumer (did you mean `maxProcessingMs`?)'),
    );
    expect(() => traceConsumer(fakeConsumer().consumer, { createSpans: true } as never)).toThrow(
      /Unknown option `createSpans` for traceConsumer/,
    );
  });

  it('refuses what is not the @platformatic/kafka client it expects, naming the parameter and what is missing', () => {
    const { producer } = fakeProducer();
    const { consumer } = fakeConsumer();
    expect(() => traceProducer(null as never)).toThrow(
      new TypeError('Expected `producer` to be a @platformatic/kafka Producer, got null'),
    );
    expect(() => traceProducer({} as never)).toThrow(
      new TypeError('Expected `producer` to be a @platformatic/kafka Producer, got an object without send()'),
    );
    expect(() => traceProducer(consumer as never)).toThrow(
      new TypeError('Expected `producer` to be a @platformatic/kafka Producer, got an object without send()'),
    );
    // a kafkajs producer: send() but no close() (kafkajs has connect/disconnect)
    expect(() => traceProducer({ send() {}, sendBatch() {}, disconnect() {} } as never)).toThrow(
      new TypeError(
        'Expected `producer` to be a @platformatic/kafka Producer, got an object without close()',
      ),
    );
    expect(() => traceConsumer(producer as never)).toThrow(
      new TypeError(
        'Expected `consumer` to be a @platformatic/kafka Consumer, got an object without consume()',
      ),
    );
    expect(() => traceConsumer(undefined as never)).toThrow(
      new TypeError('Expected `consumer` to be a @platformatic/kafka Consumer, got undefined'),
    );
    // an amqplib Channel: consume() and close() too, but no commit(). It was wrapped: its deliveries
    // reached the callback as its error argument, untraced, without a word.
    class Channel {
      consume() {}
      close() {}
      ack() {}
      publish() {}
    }
    expect(() => traceConsumer(new Channel() as never)).toThrow(
      new TypeError(
        'Expected `consumer` to be a @platformatic/kafka Consumer, got a Channel without commit()',
      ),
    );
  });

  it('validates the options of a call that returns an existing wrapper too', () => {
    const { producer } = fakeProducer();
    const { consumer } = fakeConsumer();
    const tracedProducer = traceProducer(producer);
    const tracedConsumer = traceConsumer(consumer);
    expect(() => traceProducer(tracedProducer, { captureKeys: 'yes' as never })).toThrow(/captureKeys/);
    expect(() => traceProducer(producer, { createSpans: 1 as never })).toThrow(/createSpans/);
    expect(() => traceConsumer(tracedConsumer, { maxProcessingMs: 0 })).toThrow(/maxProcessingMs/);
    expect(traceConsumer(consumer, { maxProcessingMs: 5 })).toBe(tracedConsumer);
  });

  it('wraps once', () => {
    const { producer } = fakeProducer();
    const traced = traceProducer(producer);
    expect(traceProducer(traced)).toBe(traced);
    expect(traceProducer(producer)).toBe(traced);
  });
});

describe('an option set to undefined is not set', () => {
  const producerOptions = allUndefined<PlatformaticProducerOptions>(PRODUCER_OPTION_KEYS);
  const consumerOptions = allUndefined<PlatformaticConsumerOptions>(CONSUMER_OPTION_KEYS);

  /** The shapes of the spans `run` makes. */
  const shapesOf = (run: () => Promise<unknown>) => spanShapesOf(tracing.current, run);

  it('a wrapper given every option as undefined traces as one given {}', async () => {
    const send = (options: PlatformaticProducerOptions) => async () => {
      const { producer } = fakeProducer(undefined, { bootstrapBrokers: ['kafka-1:9092'] });
      await traceProducer(producer, options).send({
        messages: [
          { topic: 't', key: 'k', value: 'a' },
          { topic: 't', value: 'b' },
        ],
      } as never);
    };
    const sent = await shapesOf(send(producerOptions));
    expect(sent.length).toBeGreaterThan(0);
    expect(sent).toEqual(await shapesOf(send({})));
    const consume = (options: PlatformaticConsumerOptions) => async () => {
      const { consumer, stream } = fakeConsumer();
      const s = await traceConsumer(consumer, options).consume();
      const traceparent = `00-${TRACE}-${PARENT}-01`;
      const received = [
        { ...message(new Map([['traceparent', traceparent]]), 1n), timestamp: 0n },
        { ...message(new Map([['baggage', 'tenant=acme']]), 2n), timestamp: 0n },
      ];
      for (const m of received) stream.push(m);
      let count = 0;
      for await (const _ of s as AsyncIterable<unknown>) if (++count === received.length) break;
    };
    const processed = await shapesOf(consume(consumerOptions));
    expect(processed.length).toBeGreaterThan(0);
    expect(processed).toEqual(await shapesOf(consume({})));
  });
});

describe('server.address / server.port from the first bootstrap broker', () => {
  /** What the send span of a producer made with `bootstrapBrokers: [broker]` says of its server. */
  async function serverOf(broker: unknown): Promise<unknown[]> {
    tracing.current.reset();
    const { producer } = fakeProducer(undefined, { bootstrapBrokers: [broker] });
    await traceProducer(producer).send({ messages: [{ topic: 't', value: 'v' }] } as never);
    const { attributes } = onlySpan(spans(), 'send t');
    return [attributes['server.address'], attributes['server.port']];
  }

  it.each([
    ['kafka-1:9092', { host: 'kafka-1', port: 9092 }, ['kafka-1', 9092]],
    ['[::1]:9092', { host: '[::1]', port: 9092 }, ['::1', 9092]],
    ['::1:9092', { host: '::1', port: 9092 }, ['::1', 9092]],
    // A URL's credentials or scheme never reach server.address (the object form carried them).
    ['user:secret@kafka-1:9092', { host: 'user:secret@kafka-1', port: 9092 }, [undefined, undefined]],
    ['kafka://kafka-1:9092', { host: 'kafka://kafka-1', port: 9092 }, [undefined, undefined]],
    ['kafka-1/x:9092', { host: 'kafka-1/x', port: 9092 }, [undefined, undefined]],
    // A port that is none (the object form's 0 and 70000 were recorded).
    ['kafka-1:0', { host: 'kafka-1', port: 0 }, [undefined, undefined]],
    ['kafka-1:70000', { host: 'kafka-1', port: 70_000 }, [undefined, undefined]],
    ['kafka-1', { host: 'kafka-1' }, [undefined, undefined]],
    [':9092', { host: '', port: 9092 }, [undefined, undefined]],
  ])('%s and its object form are read alike', async (text, object, expected) => {
    expect(await serverOf(text)).toEqual(expected);
    expect(await serverOf(object)).toEqual(expected);
  });

  it('an object entry whose reads throw, or that is no broker, gives none and never throws', async () => {
    const hostile = {
      get host(): string {
        throw new Error('host getter');
      },
      port: 9092,
    };
    const trap = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    for (const broker of [hostile, trap, { host: 'kafka-1', port: '9092' }, null, 9092, ['kafka-1:9092']]) {
      expect(await serverOf(broker)).toEqual([undefined, undefined]);
    }
  });
});

describe('server.address / server.port from the client:broker:connect event', () => {
  it('takes the broker connected to only when it reads as a bootstrap broker would', async () => {
    // A host with credentials or a scheme, or a port out of range, went to server.address / port as given.
    const { producer } = fakeProducer(undefined, { bootstrapBrokers: ['seed:9092'] });
    let connected: ((payload: unknown) => void) | undefined;
    Object.assign(producer, {
      once(event: string, listener: (payload: unknown) => void) {
        if (event === 'client:broker:connect') connected = listener;
      },
    });
    const traced = traceProducer(producer);
    const serverNow = async () => {
      tracing.current.reset();
      await traced.send({ messages: [{ topic: 't', value: 'v' }] } as never);
      const { attributes } = onlySpan(spans(), 'send t');
      return [attributes['server.address'], attributes['server.port']];
    };
    expect(await serverNow()).toEqual(['seed', 9092]);
    const hostile = {
      get broker(): unknown {
        throw new Error('payload getter');
      },
    };
    for (const payload of [
      { broker: { host: 'user:secret@kafka-2', port: 9092 } },
      { broker: { host: 'kafka-2', port: 70_000 } },
      { broker: { host: 'kafka-2', port: '9092' } },
      { broker: { host: 'kafka-2' } },
      hostile,
      undefined,
    ]) {
      expect(() => connected?.(payload)).not.toThrow();
      expect(await serverNow()).toEqual(['seed', 9092]);
    }
    connected?.({ broker: { host: 'kafka-2', port: 9093 } });
    expect(await serverNow()).toEqual(['kafka-2', 9093]);
  });
});

describe('traced producer', () => {
  it('keeps a context the caller put after many other headers', async () => {
    const { producer, sent } = fakeProducer();
    const headers = new Map<string, string>();
    for (let i = 0; i < 100; i++) headers.set(`h${i}`, 'x');
    headers.set('traceparent', `00-${TRACE}-${PARENT}-01`);
    await traceProducer(producer).send({ messages: [{ topic: 't', value: 'v', headers }] } as never);
    const out = sent[0]?.messages[0]?.headers as Map<unknown, unknown>;
    const text = new Map([...out].map(([k, v]) => [String(k), String(v)]));
    expect(text.get('traceparent')).toBe(`00-${TRACE}-${PARENT}-01`);
    expect(onlySpan(spans(), 'send t').links.map((l) => l.context.spanId)).toEqual([PARENT]);
  });

  it.each([
    ['headers', 'before any span starts'],
    ['key', 'while the create and send spans read it'],
    ['value', 'while the message is copied'],
  ])(
    'a message whose %s getter throws (%s): nothing thrown by hoptrace, no span left open',
    async (field) => {
      const { producer, sent } = fakeProducer();
      const traced = traceProducer(producer, { createSpans: true, captureKeys: true });
      const hostile = Object.defineProperty({ topic: 't', value: 'v' } as Record<string, unknown>, field, {
        enumerable: true,
        get() {
          throw new Error(`${field} getter`);
        },
      });
      // The fake client takes any input; a real one raises its own error while reading the message.
      await traced.send({ messages: [hostile, { topic: 't', value: 'w' }] } as never);
      expect(sent).toHaveLength(1);
      expect(tracing.current.openSpans()).toHaveLength(0);
    },
  );

  it('never changes the caller objects and keeps a context the caller set, linking to it', async () => {
    const { producer, sent } = fakeProducer();
    const own = `00-${TRACE}-${PARENT}-01`;
    const headers = { traceparent: own, app: 'x' };
    const plain = new Map([[Buffer.from('app'), Buffer.from('y')]]);
    const messages = [
      { topic: 't', value: Buffer.from('1'), headers },
      { topic: 't', value: Buffer.from('2'), headers: plain },
    ];
    const options = { messages };
    await traceProducer(producer).send(options);
    expect(options.messages).toBe(messages);
    expect(headers).toEqual({ traceparent: own, app: 'x' });
    expect([...plain.keys()].map(String)).toEqual(['app']);
    const out = sent[0]?.messages ?? [];
    expect(out[0]).toBe(messages[0]); // its own context: sent as it was
    const injected = out[1]?.headers as Map<Buffer, Buffer>;
    expect([...injected.keys()].map(String)).toEqual(['app', 'traceparent']);
    expect([...injected.values()].every(Buffer.isBuffer)).toBe(true);
    const send = onlySpan(spans(), 'send t');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.links.map((l) => l.context.spanId)).toEqual([PARENT]);
  });

  it("one send span's context reaches every message of a call; a field a message sets itself stays as sent", async () => {
    const { producer, sent } = fakeProducer();
    const malformed = Buffer.from('00-not-a-context');
    const own = new Map([[Buffer.from('traceparent'), malformed]]);
    const messages = [
      { topic: 't', value: Buffer.from('1') },
      { topic: 't', value: Buffer.from('2'), headers: own },
      { topic: 't', value: Buffer.from('3'), headers: { baggage: 'mine=1' } },
      { topic: 't', value: Buffer.from('4') },
    ];
    const bag = propagation.createBaggage({ tenant: { value: 'acme' } });
    await context.with(propagation.setBaggage(context.active(), bag), () =>
      traceProducer(producer).send({ messages } as never),
    );
    const send = onlySpan(spans(), 'send t');
    const expected = `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`;
    const text = (headers: unknown) =>
      headers instanceof Map
        ? Object.fromEntries([...headers].map(([k, v]) => [String(k), String(v)]))
        : Object.fromEntries(Object.entries(headers as object).map(([k, v]) => [k, String(v)]));
    const out = sent[0]?.messages ?? [];
    expect(text(out[0]?.headers)).toEqual({ traceparent: expected, baggage: 'tenant=acme' });
    expect(text(out[1]?.headers)).toEqual({ traceparent: '00-not-a-context', baggage: 'tenant=acme' });
    expect(text(out[2]?.headers)).toEqual({ baggage: 'mine=1', traceparent: expected });
    expect(text(out[3]?.headers)).toEqual({ traceparent: expected, baggage: 'tenant=acme' });
    // the caller's map is untouched
    expect([...own.keys()].map(String)).toEqual(['traceparent']);
    expect([...own.values()][0]).toBe(malformed);
  });

  it('writes strings for string serializers, and nothing through serializers it cannot write standard bytes with', async () => {
    const utf8 = (v: unknown) => (typeof v === 'string' ? Buffer.from(v) : undefined);
    const strings = fakeProducer({ headerKey: utf8, headerValue: utf8 });
    await traceProducer(strings.producer).send({ messages: [{ topic: 't', value: 'v' }] });
    expect(strings.sent[0]?.messages[0]?.headers).toMatchObject({ traceparent: expect.any(String) });

    const json = (v: unknown) => Buffer.from(JSON.stringify(v));
    const other = fakeProducer({ headerKey: json, headerValue: json });
    tracing.current.reset();
    const original = { topic: 't', value: 'v' };
    await traceProducer(other.producer).send({ messages: [original] });
    expect(other.sent[0]?.messages[0]).toBe(original);
    expect(onlySpan(spans(), 'send t').status.code).toBe(SpanStatusCode.UNSET);
  });

  it('settles callback-style sends: position on success, error.type on failure, the same error to the caller', async () => {
    const { producer } = fakeProducer();
    const traced = traceProducer(producer);
    await new Promise((resolve) => traced.send({ messages: [{ topic: 't', value: 'v' }] }, resolve));
    expect(onlySpan(spans(), 'send t').attributes).toMatchObject({
      'messaging.destination.partition.id': '2',
      'kafka.offset': 41,
    });
    tracing.current.reset();
    const failure = Object.assign(new Error('nope'), { code: 'PLT_KFK_NETWORK' });
    producer.failWith = failure;
    const got = await new Promise((resolve) =>
      traced.send({ messages: [{ topic: 't', value: 'v' }] }, resolve),
    );
    expect(got).toBe(failure);
    const send = onlySpan(spans(), 'send t');
    expect(send.status.code).toBe(SpanStatusCode.ERROR);
    expect(send.attributes['error.type']).toBe('PLT_KFK_NETWORK');
  });

  it('createSpans: a create span per message, injected into it; the send span links to each', async () => {
    const { producer, sent } = fakeProducer();
    const own = `00-${TRACE}-${PARENT}-01`;
    await traceProducer(producer, { createSpans: true }).send({
      messages: [
        { topic: 't', value: 'a' },
        { topic: 't', value: 'b' },
        { topic: 't', value: 'c', headers: { traceparent: own } },
      ],
    });
    const creates = spansNamed(spans(), 'create t');
    const send = onlySpan(spans(), 'send t');
    expect(creates).toHaveLength(2);
    expect(send.kind).toBe(SpanKind.CLIENT);
    expect(send.attributes['messaging.batch.message_count']).toBe(3);
    expect(send.links.map((l) => l.context.spanId).sort()).toEqual(
      [PARENT, ...creates.map((c) => c.spanContext().spanId)].sort(),
    );
    const carried = (sent[0]?.messages ?? []).map((m) => {
      const headers = m.headers as Map<Buffer, Buffer> | Record<string, string>;
      return headers instanceof Map ? String([...headers.values()][0]) : headers.traceparent;
    });
    expect(carried.slice(0, 2)).toEqual(
      creates.map((c) => `00-${c.spanContext().traceId}-${c.spanContext().spanId}-01`),
    );
    expect(carried[2]).toBe(own);
  });

  it('leaves keys out unless asked, and traces sends on a transaction', async () => {
    const { producer, sent } = fakeProducer();
    const traced = traceProducer(producer);
    const transaction = await traced.beginTransaction();
    await transaction.send({ messages: [{ topic: 't', key: 'secret', value: 'v' }] });
    await transaction.commit();
    const send = onlySpan(spans(), 'send t');
    expect(send.attributes['hoptrace.kafka.transaction.outcome']).toBe('committed');
    expect(send.attributes['kafka.message.key']).toBeUndefined();
    const headers = sent[0]?.messages[0]?.headers;
    expect(headers).toBeInstanceOf(Map);
    expect([...((headers as Map<Buffer, Buffer>) ?? new Map()).keys()].map(String)).toEqual(['traceparent']);
  });

  it('names the failure with classifyError (a throwing classifier changes nothing for the caller)', async () => {
    const { producer } = fakeProducer();
    const failure = new Error('quota');
    producer.failWith = failure;
    const classified = traceProducer(producer, { classifyError: () => ({ type: 'QUOTA', retryable: true }) });
    await expect(classified.send({ messages: [{ topic: 't', value: 'v' }] })).rejects.toBe(failure);
    expect(onlySpan(spans(), 'send t').attributes).toMatchObject({
      'error.type': 'QUOTA',
      'hoptrace.error.retryable': true,
    });
    tracing.current.reset();
    const { producer: other } = fakeProducer();
    other.failWith = failure;
    const broken = traceProducer(other, {
      classifyError: () => {
        throw new Error('classifier bug');
      },
    });
    await expect(broken.send({ messages: [{ topic: 't', value: 'v' }] })).rejects.toBe(failure);
    expect(onlySpan(spans(), 'send t').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('passes input it cannot read through untouched, so the client reports it', async () => {
    const { producer, sent } = fakeProducer();
    const bad = { messages: 'nope' } as unknown as { messages: [] };
    await traceProducer(producer).send(bad);
    expect(sent[0]).toBe(bad);
    expect(spans()).toHaveLength(0);
  });
});

describe('traced consumer stream', () => {
  it('hands out the very message objects; malformed headers start a new trace and never throw', async () => {
    const { consumer, stream } = fakeConsumer();
    const traced = traceConsumer(consumer);
    const s = await traced.consume();
    const bad = [
      new Map([[Buffer.from('traceparent'), Buffer.from([0xff, 0xfe, 0x00])]]),
      new Map([['traceparent', 'x'.repeat(100_000)]]),
      new Map<unknown, unknown>([
        [42, 'odd key'],
        [Buffer.from('baggage'), { not: 'text' }],
      ]),
      new Map([['traceparent', `00-${'0'.repeat(32)}-${PARENT}-01`]]),
    ];
    const sent = bad.map((h, i) => message(h, BigInt(i)));
    for (const m of sent) stream.push(m);
    const got: unknown[] = [];
    for await (const m of s as AsyncIterable<unknown>) {
      got.push(m);
      if (got.length === sent.length) break;
    }
    expect(got).toEqual(sent);
    for (const [i, m] of got.entries()) expect(m).toBe(sent[i]);
    const processes = spansNamed(spans(), 'process t');
    expect(processes).toHaveLength(4);
    for (const p of processes) {
      expect(parentSpanId(p)).toBeUndefined();
      expect(p.attributes['messaging.consumer.group.name']).toBe('fake-group');
      expect(p.attributes['messaging.client.id']).toBe('fake-consumer');
    }
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['a null-prototype object', Object.create(null)],
    [
      'an object whose getters throw',
      Object.defineProperty({}, 'message', {
        get: () => {
          throw new Error('getter');
        },
      }),
    ],
  ])('a data listener throwing %s: recorded, rethrown unchanged', async (_name, thrown) => {
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer).consume();
    let caught: unknown = 'nothing';
    s.on('data', () => {
      throw thrown;
    });
    try {
      stream.emit('data', message(new Map()));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(thrown);
    await new Promise((r) => setImmediate(r));
    const process = onlySpan(spans(), 'process t');
    expect(process.status.code).toBe(SpanStatusCode.ERROR);
    expect(typeof process.attributes['error.type']).toBe('string');
  });

  it('stream.iterator() is traced like for await', async () => {
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer).consume();
    stream.push(message(new Map(), 0n));
    stream.push(message(new Map(), 1n));
    const iterator = s.iterator({ destroyOnReturn: false });
    await iterator.next();
    expect(tracing.current.openSpans()).toHaveLength(1);
    await iterator.next();
    expect(spansNamed(spans(), 'process t')).toHaveLength(1);
    await iterator.return?.();
    expect(spansNamed(spans(), 'process t')).toHaveLength(2);
  });

  it("relation 'link': a new trace per message, linked to its creation context", async () => {
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer, { relation: 'link' }).consume();
    s.on('data', () => undefined);
    stream.emit('data', message(new Map([['traceparent', `00-${TRACE}-${PARENT}-01`]])));
    await new Promise((r) => setImmediate(r));
    const process = onlySpan(spans(), 'process t');
    expect(process.spanContext().traceId).not.toBe(TRACE);
    expect(process.links.map((l) => l.context.spanId)).toEqual([PARENT]);
  });

  it("unsampled: 'skip' makes no span, and the handler still runs in the message's context", async () => {
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer, { unsampled: 'skip' }).consume();
    let traceId: string | undefined;
    s.on('data', (m: object) =>
      withMessageContext(m, () => {
        traceId = trace.getActiveSpan()?.spanContext().traceId;
      }),
    );
    stream.emit('data', message(new Map([['traceparent', `00-${TRACE}-${PARENT}-00`]])));
    await new Promise((r) => setImmediate(r));
    expect(spans()).toHaveLength(0);
    expect(traceId).toBe(TRACE);
  });

  it('an unsampled message gets no span, yet every helper still finds its consumer and its own context', async () => {
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer, { unsampled: 'skip' }).consume();
    const iterator = s[Symbol.asyncIterator]();
    stream.push(message(new Map([[Buffer.from('traceparent'), Buffer.from(`00-${TRACE}-${PARENT}-00`)]])));
    const { value: got } = await iterator.next();
    expect(tracing.current.openSpans()).toHaveLength(0);
    expect(spans()).toHaveLength(0);
    let inside: string | undefined;
    withMessageContext(got as object, () => {
      inside = trace.getSpanContext(context.active())?.traceId;
    });
    expect(inside).toBe(TRACE);
    // A dead-letter copy names the unsampled attempt's own context as the failed one.
    const copy = deadLetterMessage(got as Parameters<typeof deadLetterMessage>[0], new Error('x'));
    const failed = [...copy.headers].find(([k]) => String(k) === 'hoptrace-failed-traceparent');
    expect(String(failed?.[1])).toBe(`00-${TRACE}-${PARENT}-00`);
    // withBatchContext knows the message's consumer in message mode too: a batch span links to it.
    withBatchContext([got as object], () => undefined);
    expect(onlySpan(spans(), 'process t').links.map((l) => l.context.spanId)).toEqual([PARENT]);
    await iterator.return?.();
  });

  /** A batch-mode traced stream's iterator and the one message it handed out (sampled parent). */
  async function batchModeMessage() {
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer, { batchSpans: 'batch' }).consume();
    const iterator = s[Symbol.asyncIterator]();
    stream.push(message(new Map([['traceparent', `00-${TRACE}-${PARENT}-01`]])));
    const { value } = await iterator.next();
    return { iterator, got: value as object };
  }

  it('batch mode: each withMessageContext call gets its own span; withBatchContext skips null entries', async () => {
    const { iterator, got } = await batchModeMessage();
    const seen: (string | undefined)[] = [];
    const active = () => seen.push(trace.getActiveSpan()?.spanContext().spanId);
    withMessageContext(got, active);
    withMessageContext(got, active);
    const calls = spansNamed(spans(), 'process t');
    expect(calls).toHaveLength(2);
    // Two distinct spans, each the active one during its call, both children of the creation context.
    expect(seen).toEqual(calls.map((c) => c.spanContext().spanId));
    expect(new Set(seen).size).toBe(2);
    for (const call of calls) {
      expect(call.spanContext().traceId).toBe(TRACE);
      expect(parentSpanId(call)).toBe(PARENT);
    }
    expect(() => withBatchContext([null as unknown as object, got], () => undefined)).not.toThrow();
    const batch = spansNamed(spans(), 'process t').find((s) => !calls.includes(s));
    expect(batch?.links.map((l) => l.context.spanId)).toEqual([PARENT]);
    expect(batch?.spanContext().traceId).not.toBe(TRACE);
    await iterator.return?.();
  });

  it('batch mode: a dead-letter copy made after withMessageContext failed names that failed attempt', async () => {
    const { iterator, got } = await batchModeMessage();
    const boom = new Error('no stock');
    let caught: unknown;
    try {
      await withMessageContext(got as object, async () => {
        throw boom;
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBe(boom);
    const failed = onlySpan(spans(), 'process t');
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    const copy = deadLetterMessage(got as Parameters<typeof deadLetterMessage>[0], caught);
    const header = [...copy.headers].find(([k]) => String(k) === 'hoptrace-failed-traceparent');
    expect(String(header?.[1])).toBe(`00-${TRACE}-${failed.spanContext().spanId}-01`);
    await iterator.return?.();
  });

  it('a trace budget starts a new linked trace past maxHops', async () => {
    const { consumer, stream } = fakeConsumer();
    const s = await traceConsumer(consumer, { traceBudget: { maxHops: 1 } }).consume();
    s.on('data', () => undefined);
    stream.emit(
      'data',
      message(
        new Map([
          ['traceparent', `00-${TRACE}-${PARENT}-01`],
          ['tracestate', 'hoptrace=1'],
        ]),
      ),
    );
    await new Promise((r) => setImmediate(r));
    const process = onlySpan(spans(), 'process t');
    expect(process.spanContext().traceId).not.toBe(TRACE);
    expect(process.links.map((l) => l.context.spanId)).toEqual([PARENT]);
    expect(process.attributes[ATTR_HOPTRACE_BUDGET_EXCEEDED]).toBe(true);
  });
});

describe('traced transactions (client stand-in)', () => {
  /** A producer whose transactions answer as told: `fail` names the method that fails. */
  function transactional(fail?: 'commit' | 'abort' | 'cancel' | 'close' | 'send-throws') {
    const { producer, sent } = fakeProducer();
    const answer = (method: string, callback?: (e: unknown) => void) => {
      const error = fail === method ? new Error(`${method} failed`) : null;
      if (callback) {
        setImmediate(() => callback(error));
        return undefined;
      }
      return error ? Promise.reject(error) : Promise.resolve();
    };
    const transaction = {
      send(options: never, callback?: never) {
        if (fail === 'send-throws') throw new TypeError('bad options');
        return producer.send(options, callback);
      },
      commit: (callback?: (e: unknown) => void) => answer('commit', callback),
      abort: (callback?: (e: unknown) => void) => answer('abort', callback),
      cancel: (callback?: (e: unknown) => void) => answer('cancel', callback),
      addOffset: (message: unknown, callback?: (e: unknown) => void) => {
        // As the client does: it reads the message before anything else.
        void (message as { metadata?: unknown }).metadata;
        return answer('addOffset', callback);
      },
    };
    const close = async () => {
      if (fail === 'close') throw new Error('Cannot close producer while producing messages.');
    };
    const traced = traceProducer({ ...producer, beginTransaction: async () => transaction, close });
    return { traced, sent };
  }
  const outcomeOf = (name: string) =>
    spansNamed(spans(), name).map((s) => s.attributes['hoptrace.kafka.transaction.outcome']);

  it('a cancelled transaction ends its waiting sends as unknown', async () => {
    const { traced } = transactional();
    const transaction = await traced.beginTransaction();
    await transaction.send({ messages: [{ topic: 't', value: 'v' }] } as never);
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual(['send t']);
    await transaction.cancel();
    expect(tracing.current.openSpans()).toEqual([]);
    expect(outcomeOf('send t')).toEqual(['unknown']);
  });

  it('a failed commit (callback style) ends its span ERROR and the sends as unknown; the caller gets the same error', async () => {
    const { traced } = transactional('commit');
    const transaction = await traced.beginTransaction();
    await transaction.send({ messages: [{ topic: 't', value: 'v' }] } as never);
    const error = await new Promise((resolve) => transaction.commit(resolve));
    expect((error as Error).message).toBe('commit failed');
    const commit = onlySpan(spans(), 'commit_transaction');
    expect(commit.status.code).toBe(SpanStatusCode.ERROR);
    expect(outcomeOf('send t')).toEqual(['unknown']);
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it('a failed abort rejects with the same error and ends the sends as unknown', async () => {
    const { traced } = transactional('abort');
    const transaction = await traced.beginTransaction();
    const inFlight = transaction.send({ messages: [{ topic: 't', value: 'late' }] } as never);
    await expect(transaction.abort()).rejects.toThrow('abort failed');
    await inFlight;
    expect(outcomeOf('send t')).toEqual(['unknown']);
    expect(onlySpan(spans(), 'abort_transaction').status.code).toBe(SpanStatusCode.ERROR);
    expect(tracing.current.openSpans()).toEqual([]);
  });

  it('an abort ends sends ERROR with transaction_aborted, also one still in flight', async () => {
    const { traced } = transactional();
    const transaction = await traced.beginTransaction();
    await transaction.send({ messages: [{ topic: 't', value: 'a' }] } as never);
    // Callback style: the stand-in answers on a later turn, after the abort has settled.
    const inFlight = new Promise((resolve) =>
      transaction.send({ messages: [{ topic: 't', value: 'b' }] } as never, resolve as never),
    );
    await transaction.abort();
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual(['send t']);
    await inFlight;
    const sends = spansNamed(spans(), 'send t');
    expect(sends.map((s) => s.attributes['hoptrace.kafka.transaction.outcome'])).toEqual([
      'aborted',
      'aborted',
    ]);
    for (const send of sends) {
      expect(send.status.code).toBe(SpanStatusCode.ERROR);
      expect(send.attributes['error.type']).toBe('transaction_aborted');
    }
    expect(onlySpan(spans(), 'abort_transaction').status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a transactional send that throws synchronously ends its span with the error, which reaches the caller', async () => {
    const { traced } = transactional('send-throws');
    const transaction = await traced.beginTransaction();
    expect(() => transaction.send({ messages: [{ topic: 't', value: 'v' }] } as never)).toThrow(TypeError);
    expect(tracing.current.openSpans()).toEqual([]);
    expect(onlySpan(spans(), 'send t').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a close that fails leaves the waiting sends to their transaction, which still commits them', async () => {
    const { traced } = transactional('close');
    const transaction = await traced.beginTransaction();
    await transaction.send({ messages: [{ topic: 't', value: 'v' }] } as never);
    await expect((traced as unknown as { close(): Promise<void> }).close()).rejects.toThrow('Cannot close');
    expect(tracing.current.openSpans().map((s) => s.name)).toEqual(['send t']);
    await transaction.commit();
    expect(outcomeOf('send t')).toEqual(['committed']);
  });

  it('addOffset: the client throwing synchronously (callback style) ends the span ERROR and the same error reaches the caller', async () => {
    const { traced } = transactional();
    const transaction = await traced.beginTransaction();
    const callback = () => {
      throw new Error('never called');
    };
    expect(() => transaction.addOffset(null as never, callback as never)).toThrow(TypeError);
    expect(tracing.current.openSpans()).toEqual([]);
    expect(onlySpan(spans(), 'send_offsets').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('closing the producer ends the sends still waiting for an outcome as unknown', async () => {
    const { traced } = transactional();
    const transaction = await traced.beginTransaction();
    await transaction.send({ messages: [{ topic: 't', value: 'v' }] } as never);
    await (traced as unknown as { close(): Promise<void> }).close();
    expect(outcomeOf('send t')).toEqual(['unknown']);
    expect(tracing.current.openSpans()).toEqual([]);
  });
});
