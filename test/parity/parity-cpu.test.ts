// The parity suite again on the cpu backend (each test file runs in its own process).
process.env.RELEVANCE_LENS_BACKEND = 'cpu';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the environment above is set (an import would be hoisted above it)
require('./parity.test');
