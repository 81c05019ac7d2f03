// The zoo again without the native kernels: the wasm backend's own (each test file runs in its own process).
process.env.RELEVANCE_LENS_NATIVE = 'off';
// eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded after the environment above is set (an import would be hoisted above it)
require('./zoo.test');
