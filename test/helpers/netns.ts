/**
 * Network namespaces for tests: see src/demo/lab.ts (shared with the demo and
 * the benchmark, which must clean up the same way).
 *
 * @module
 */
export * from "../../src/demo/lab.ts";
