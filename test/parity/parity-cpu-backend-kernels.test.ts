// The parity suite on the cpu backend without the native kernels: its own (each test file runs in its own process).
process.env.RELEVANCE_LENS_BACKEND = 'cpu';
process.env.RELEVANCE_LENS_NATIVE = 'off';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the environment above is set (an import would be hoisted above it)
require('./parity.test');
