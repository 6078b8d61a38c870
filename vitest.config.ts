import { configDefaults, defineConfig } from 'vitest/config';

// One vitest run covers the unit tests beside each package and the cross-package
// integration tests under test/. Integration tests start real processes from the
// built `dist/` output, so `npm test` builds first.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // The container tests need a Docker engine: `npm run test:containers` runs them.
    exclude: [...configDefaults.exclude, 'test/containers/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
