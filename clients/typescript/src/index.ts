/**
 * Herald TypeScript SDK. `@herald/client` is the current API version (v1); import a version
 * explicitly with `@herald/client/v1`. The version-independent runtime is
 * `@herald/client/runtime`.
 */
export * from "./v1/index.js";
export { default } from "./v1/index.js";
