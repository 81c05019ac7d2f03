// The zoo again without the native kernels: the wasm backend's own (each test file runs in its own process).
process.env.RELEVANCE_LENS_NATIVE = 'off';
require('./zoo.test');
