import { defineConfig } from 'vitest/config';

// The container tests: they build the image from deploy/docker and run it, so they need a
// Docker engine and are kept out of `npm test` (the root config excludes test/containers).
// Run them with `npm run test:containers`.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/containers/**/*.test.ts'],
    // Building the image from a cold cache installs every dependency from the registry.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // One file at a time: the files build the same image tag, and the chaos cluster's six
    // containers need the machine to themselves for their timeouts to mean what they say.
    fileParallelism: false,
  },
});
