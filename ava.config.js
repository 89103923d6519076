// ava runs the compiled tests (tsc -b output): workers must run from compiled JS on Node 20 anyway.
export default {
  files: ['packages/*/dist/test/**/*.test.js', 'test/dist/**/*.test.js'],
  timeout: '120s',
  concurrency: 2,
  workerThreads: false,
};
