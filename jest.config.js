// One project per suite (unit and ui run together as `npm run test:unit`); `npm test` runs them in turn.
const transform = { "^.+\\.ts$": ["@swc/jest", { jsc: { target: "es2023" }, module: { type: "commonjs" } }] };
const common = { transform, testEnvironment: "node", moduleFileExtensions: ["ts", "js", "json"] };
/** The web console's code: TSX with React's automatic runtime, in a DOM. */
const uiTransform = {
  "^.+\\.(t|j)sx?$": [
    "@swc/jest",
    {
      jsc: {
        target: "es2023",
        parser: { syntax: "typescript", tsx: true },
        transform: { react: { runtime: "automatic" } },
      },
      module: { type: "commonjs" },
    },
  ],
};

/** @type {import('jest').Config} */
module.exports = {
  // Integration and e2e tests start real servers and processes; a unit test that takes this long is broken anyway.
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: "unit", testMatch: ["<rootDir>/test/unit/**/*.test.ts"] },
    {
      displayName: "ui",
      testEnvironment: "jsdom",
      transform: uiTransform,
      // react-router ships ES modules only.
      transformIgnorePatterns: ["/node_modules/(?!react-router/)"],
      moduleNameMapper: { "\\.css$": "<rootDir>/test/support/style-stub.js" },
      moduleFileExtensions: ["tsx", "ts", "js", "json"],
      testMatch: ["<rootDir>/public/src/**/*.test.{ts,tsx}"],
    },
    {
      ...common,
      displayName: "integration",
      testMatch: ["<rootDir>/test/integration/**/*.test.ts"],
      globalSetup: "<rootDir>/test/support/global-setup.ts",
      globalTeardown: "<rootDir>/test/support/global-teardown.ts",
      setupFilesAfterEnv: ["<rootDir>/test/support/cleanup.ts"],
    },
    {
      ...common,
      displayName: "e2e",
      testMatch: ["<rootDir>/test/e2e/**/*.test.ts"],
      globalSetup: "<rootDir>/test/support/global-setup.ts",
      globalTeardown: "<rootDir>/test/support/global-teardown.ts",
      setupFilesAfterEnv: ["<rootDir>/test/support/cleanup.ts"],
    },
  ],
};
