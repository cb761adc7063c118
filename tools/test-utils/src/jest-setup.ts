/// <reference types="jest" />
// Loaded into every test file by the root jest.config.js (setupFilesAfterEnv), so `toBeCloseToTensor` needs no
// per-file registration. tensor-compare imports nothing, which keeps this cheap for tests that never use it.
import { installTensorMatchers } from './tensor-compare';

installTensorMatchers();
