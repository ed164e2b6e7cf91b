/**
 * A vitest setup file for every test project: the SDK's span-misuse complaints (see
 * `span-misuse.ts`) are collected for the whole file, and a test during which one appeared fails.
 *
 * @packageDocumentation
 */

import { afterEach, beforeEach } from 'vitest';
import { assertNoSpanMisuse, takeSpanMisuse, watchSpanMisuse } from './span-misuse.ts';

watchSpanMisuse();
// What a previous file's last moments left behind is not this test's.
beforeEach(() => {
  takeSpanMisuse();
});
afterEach(() => {
  assertNoSpanMisuse();
});
