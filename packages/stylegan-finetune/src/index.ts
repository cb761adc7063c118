/**
 * @module @scenimefy/stylegan-finetune
 * Only the names exported here are public.
 */
export { PACKAGE_NAME, PACKAGE_VERSION } from './version';
