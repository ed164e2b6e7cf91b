// Unit tests of bench/ itself (the report logic, the suite registry): `./dev bench check`.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    include: ['test/**/*.test.ts'],
    reporters: ['default'],
  },
});
