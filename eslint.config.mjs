// ESLint (typescript-eslint's recommended rules) over every TypeScript source; npm test runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'out/',
      'node_modules/',
      '.zoo-cache/',
      '.e2e-cache/',
      'test-artifacts/',
      'engine/native/build/',
      'tmp/',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
);
