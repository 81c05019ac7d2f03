// The parity suite on the cpu backend without the native kernels: its own (each test file runs in its own process).
process.env.RELEVANCE_LENS_BACKEND = 'cpu';
process.env.RELEVANCE_LENS_NATIVE = 'off';
require('./parity.test');
