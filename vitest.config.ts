import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Integration tests start real containers and build real images: give them room, and run
    // test files one at a time so two files never race for the machine's two cores.
    testTimeout: 120_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
