import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { alias: { hyrum: fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts', 'scenarios/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
