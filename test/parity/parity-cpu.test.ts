// The parity suite again on the cpu backend (each test file runs in its own process).
process.env.RELEVANCE_LENS_BACKEND = 'cpu';
require('./parity.test');
