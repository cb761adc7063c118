/**
 * @module @scenimefy/test-utils
 * Private test helpers for Scenimefy.js: the reference fixture loader, the tensor closeness check and its jest
 * matcher `toBeCloseToTensor`, temp folders, a loopback HTTP server, and the import-graph walker that keeps
 * browser entries free of Node-only modules. Only the names exported here are public.
 *
 * The matcher is registered for every test file by the root jest.config.js; import this package in a test that
 * uses it so the matcher's type declaration is in scope.
 */

export {
  describeIfFixture,
  hasReferenceFixture,
  loadReferenceFixture,
  referenceFixturePath,
  referenceFixturesDir,
  repoRoot,
} from './reference-fixtures';
export type { LoadReferenceFixtureOptions, ReferenceFixture, SidecarTensor } from './reference-fixtures';

export { compareTensors, describeTensorComparison, installTensorMatchers, unravelIndex } from './tensor-compare';
export type { TensorCloseOptions, TensorComparison } from './tensor-compare';

export { makeTempDir, withTempDir } from './temp-dir';
export { seededUniform, seededUnitRows } from './seeded-data';
export {
  SYNTHETIC_INK,
  SYNTHETIC_PALETTE,
  syntheticAnime,
  syntheticPair,
  syntheticPhoto,
  syntheticSceneSeed,
  writeSyntheticDataset,
} from './synthetic-domains';
export type { SyntheticDataset, SyntheticDatasetOptions, SyntheticPair, SyntheticScene } from './synthetic-domains';
export { guardAgainstSideEffects } from './side-effect-guard';
export { contractRejection } from './contract-rejection';
export { concatBytes, deflateMember, repeatedDeflate, torchZip } from './torch-zip';
export type { DeflatedMember, TorchZipMember } from './torch-zip';
export { browserImportViolations, describeImportViolation, nodeOnlyReason, walkImportGraph } from './import-graph';
export type { ExternalImport, ImportGraph, ImportGraphOptions, ImportViolation } from './import-graph';
export type { TempDir } from './temp-dir';

export { startLoopbackServer } from './loopback-server';
export type { LoopbackServer, RecordedRequest, Route, RouteHandler, RouteSpec } from './loopback-server';
