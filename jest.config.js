// One jest run over every package; workspace imports resolve to their TypeScript sources, so tests need no build.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // Workspace packages resolve through node_modules and their package.json `exports`, whose `@scenimefy/source`
  // condition names the TypeScript entry: a new package or subpath entry needs no mapping here.
  testEnvironmentOptions: { customExportConditions: ['@scenimefy/source', 'node', 'require', 'default'] },
  roots: ['<rootDir>/packages', '<rootDir>/tools'],
  testMatch: ['**/src/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  moduleNameMapper: {
    // NodeNext needs '.js' on dynamic imports of our own modules; the sources are .ts.
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  setupFiles: ['<rootDir>/jest.setup.js'],
  // Registers expect(...).toBeCloseToTensor for every test file; the module imports nothing, so it costs ~nothing.
  setupFilesAfterEnv: ['<rootDir>/tools/test-utils/src/jest-setup.ts'],
  testTimeout: 120000,
  maxWorkers: 2,
};
