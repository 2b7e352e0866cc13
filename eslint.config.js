// @ts-check
/**
 * The linter: the layering rules of docs/ARCHITECTURE.md as import
 * boundaries, and no console in the server (pino logs). `.ci/run` runs it
 * (`npm run lint`); a layering violation fails CI.
 *
 * Import paths are relative, so each boundary is written per folder depth:
 * from `src/core/x.ts` the outside starts at `../`, from `src/core/auth/x.ts`
 * at `../../`.
 */
import tseslint from 'typescript-eslint';

/** `@typescript-eslint/no-restricted-imports` refusing import paths that match `regex` (and `paths`, when given). */
const restrict = (message, regex, paths = []) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ regex, message }], paths }],
});

/** SQL is written only under src/storage (and in migrations). */
const noSql = [{ name: 'kysely', importNames: ['sql'], message: 'SQL only under src/storage.' }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
  },
  // src/core: pure, imports nothing of ours outside it.
  { files: ['src/core/*.ts'], rules: restrict('src/core imports nothing of the project outside src/core.', '^\\.\\./') },
  { files: ['src/core/*/*.ts'], rules: restrict('src/core imports nothing of the project outside src/core.', '^\\.\\./\\.\\./') },
  // src/storage: SQL only; besides itself, the config types, the core, start-up errors and the migrations.
  {
    files: ['src/storage/*.ts'],
    rules: restrict(
      'src/storage imports only storage, config types, core, startup-error and the migrations.',
      '^\\.\\./(?!config/types\\.js$|core/|startup-error\\.js$|\\.\\./migrations/)',
    ),
  },
  // src/services never reach up into src/http.
  { files: ['src/services/**/*.ts'], rules: restrict('src/services never import src/http.', '^(\\.\\./)+http/', noSql) },
  // src/http: handlers call services; from src/storage they take only types, and they write no SQL.
  {
    files: ['src/http/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: noSql,
          patterns: [{ regex: '^(\\.\\./)+storage/', allowTypeImports: true, message: 'src/http takes only types from src/storage; call a service.' }],
        },
      ],
    },
  },
  // No console in the server: logs go through pino (the CLI commands print to the terminal on purpose).
  { files: ['src/**/*.ts'], ignores: ['src/cli/**', 'src/main.ts'], rules: { 'no-console': 'error' } },
);
