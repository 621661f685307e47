// Lint for src/, test/, bench/ and scripts/: ESLint's and typescript-eslint's recommended rules, with
// the exceptions below (each says why). The formatter (Prettier, .prettierrc.json) owns layout; the
// architecture's import boundaries are test/boundaries.test.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Node's CommonJS globals, for the plain .js scripts and fixtures node runs directly. */
const NODE_GLOBALS = Object.fromEntries(
  ['require', 'module', 'process', 'console', '__dirname', 'Buffer', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'].map((g) => [g, 'readonly']),
);

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'native/**', 'scenarios/services/**', 'captures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // `_name` marks what a signature or a destructuring must name but the code does not use (tsc's noUnused* agree).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' }],
      // A counter's last `seq++` and a default a `try` overwrites say what the value is; dead variables are tsc's noUnusedLocals.
      'no-useless-assignment': 'off',
      // Framing loops read `do { … } while (true)` with their exits inside.
      'no-constant-condition': ['error', { checkLoops: false }],
      // A `let` a callback reads before it is set (it cannot be const).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests and benchmarks drive peers that have no types: Node's internal llhttp binding, OTLP JSON bodies.
    files: ['test/**', 'bench/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: NODE_GLOBALS },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
