import { type AmqpTracingOptions, deadLetterOptions, traceChannel, traceConnection } from '@hoptrace/amqp';
import type { AllUndefined, MaybeSet } from '@hoptrace/test-kit';
import type { TracerProvider } from '@opentelemetry/api';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, GetMessage, Options } from 'amqplib';
import type { Channel as CallbackChannel, Connection as CallbackConnection } from 'amqplib/callback_api';
import { describe, expectTypeOf, it } from 'vitest';

// Compile-time checks: `pnpm run typecheck` fails if a wrapper loses the client's type, or if an
// option marked `@ts-expect-error` below becomes accepted. Nothing here connects anywhere.
declare const model: ChannelModel;
declare const channel: Channel;
declare const confirm: ConfirmChannel;
declare const callbackConnection: CallbackConnection;
declare const callbackChannel: CallbackChannel;
declare const consumed: ConsumeMessage;
declare const got: GetMessage;
const maybeTracerProvider = undefined as TracerProvider | undefined;

describe('@hoptrace/amqp types', () => {
  it('every wrapper returns the exact client type it was given', () => {
    // Declared values only (nothing to connect to): the checks run at compile time, never called.
    const compileOnly = () => {
      expectTypeOf(traceConnection(model)).toEqualTypeOf<ChannelModel>();
      expectTypeOf(traceChannel(channel)).toEqualTypeOf<Channel>();
      expectTypeOf(traceChannel(confirm)).toEqualTypeOf<ConfirmChannel>();
      expectTypeOf(traceConnection(callbackConnection)).toEqualTypeOf<CallbackConnection>();
      expectTypeOf(traceChannel(callbackChannel)).toEqualTypeOf<CallbackChannel>();
    };
    expectTypeOf(compileOnly).toBeFunction();
  });

  it('deadLetterOptions takes amqplib messages and gives publish options', () => {
    const compileOnly = () => {
      expectTypeOf(deadLetterOptions(consumed, new Error('x'))).toExtend<Options.Publish>();
      expectTypeOf(
        deadLetterOptions(got, null, { queue: 'orders', attempts: 2 }),
      ).toExtend<Options.Publish>();
      channel.publish('dlx', 'orders', consumed.content, deadLetterOptions(consumed, 'failed'));
      // @ts-expect-error attempts is a number
      deadLetterOptions(consumed, null, { attempts: '2' });
    };
    expectTypeOf(compileOnly).toBeFunction();
  });

  it('rejects invalid options at compile time', () => {
    const invalid = [
      // @ts-expect-error settleTimeoutMs is a number
      () => traceChannel(channel, { settleTimeoutMs: '60s' }),
      // @ts-expect-error relation is 'parent' | 'link' | 'root'
      () => traceConnection(model, { relation: 'sibling' }),
      // @ts-expect-error spanDestination is a function
      () => traceChannel(channel, { spanDestination: 'queue' }),
      // @ts-expect-error captureRoutingKey is a boolean
      () => traceChannel(channel, { captureRoutingKey: 1 }),
      // @ts-expect-error not a channel
      () => traceChannel({}),
      // @ts-expect-error no unknown options
      () => traceChannel(channel, { settleSpan: true }),
    ];
    expectTypeOf(invalid).toBeArray();
  });

  it('every option of every wrapper takes an explicit undefined (exactOptionalPropertyTypes)', () => {
    const options = {} as AllUndefined<AmqpTracingOptions>;
    const compileOnly = () => {
      expectTypeOf(traceConnection(model, options)).toEqualTypeOf<ChannelModel>();
      expectTypeOf(traceChannel(channel, options)).toEqualTypeOf<Channel>();
      expectTypeOf(
        traceChannel(confirm, { tracerProvider: maybeTracerProvider }),
      ).toEqualTypeOf<ConfirmChannel>();
    };
    expectTypeOf(compileOnly).toBeFunction();
    expectTypeOf<MaybeSet<AmqpTracingOptions>>().toExtend<AmqpTracingOptions>();
  });
});
