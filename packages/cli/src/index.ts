/**
 * @module @scenimefy/cli
 * The `scenimefy` command-line tool. Programmatic entry: `main(argv, streams)` resolves to the exit status.
 */
export { buildProgram, main } from './cli';
export type { GlobalOptions } from './cli';
export { EXIT_STDOUT_CLOSED, Output } from './output';
export type { CliEvent, CliStreams, OutputRow } from './output';
