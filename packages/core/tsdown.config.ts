import { defineConfig } from 'tsdown';
import base from '../../tsdown.base.ts';

/** Two entries: the application API (`.`) and the adapter plumbing (`./adapter`). */
export default defineConfig({ ...base, entry: ['src/index.ts', 'src/adapter.ts'] });
