import { defineConfig } from 'tsdown';

/** The one build every published package uses: dual ESM/CJS with a types file per format. */
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  platform: 'node',
  target: 'node20',
  clean: true,
  sourcemap: true,
});
