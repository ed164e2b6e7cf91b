import { describe, expect, it } from 'vitest';
import { parseBenchCommand } from '../lib/cli.ts';

describe('./dev bench command line', () => {
  it('prints help instead of starting a run', () => {
    // `./dev bench --help` started a full broker run (about half an hour, rewriting the results).
    for (const argv of [['--help'], ['-h'], ['help'], ['brokers', '--help'], ['amqp', '--quick', '-h']]) {
      expect(parseBenchCommand(argv)).toEqual({ kind: 'help' });
    }
  });

  it('refuses an argument it does not know, before anything runs', () => {
    expect(parseBenchCommand(['brokers', '--reps'])).toEqual({
      kind: 'error',
      message: './dev bench: unknown argument `--reps`',
    });
    expect(parseBenchCommand(['amqp', '--quik'])).toMatchObject({ kind: 'error' });
    expect(parseBenchCommand(['amqp', 'kafka'])).toMatchObject({ kind: 'error' });
  });

  it('reads the runs it always did', () => {
    expect(parseBenchCommand([])).toEqual({ kind: 'run', what: 'core', rest: [] });
    expect(parseBenchCommand(['--quick'])).toEqual({ kind: 'run', what: 'core', rest: ['--quick'] });
    expect(
      parseBenchCommand(['amqp', '--variants=raw+header,hoptrace/off', '--reps=7', '--no-readme']),
    ).toEqual({
      kind: 'run',
      what: 'amqp',
      rest: ['--variants=raw+header,hoptrace/off', '--reps=7', '--no-readme'],
    });
    expect(parseBenchCommand(['all', '--smoke'])).toEqual({ kind: 'run', what: 'all', rest: ['--smoke'] });
  });
});
