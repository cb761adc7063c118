// Tests never touch the network and never read the user's cache.
process.env.SCENIMEFY_OFFLINE = process.env.SCENIMEFY_OFFLINE ?? '1';

// Jest runs each test file in its own vm realm, but native addons (onnxruntime-node, tfjs-node) create their typed
// arrays in the main realm, so `x instanceof Float32Array` is false inside the sandbox and onnxruntime-common
// rejects its own outputs (jest #11864). Outside jest there is one realm; make instanceof behave the same here by
// also accepting a typed array of the same kind from another realm (ArrayBuffer.isView and the toStringTag getter
// read internal slots, so they work across realms).
for (const name of [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
]) {
  const ctor = globalThis[name];
  if (typeof ctor !== 'function' || Object.prototype.hasOwnProperty.call(ctor, Symbol.hasInstance)) continue;
  // Jest's node environment shares these constructors between test files of one worker: patch once.
  Object.defineProperty(ctor, Symbol.hasInstance, {
    configurable: true,
    // `this` is the constructor on the right of instanceof: subclasses such as Buffer inherit this static method
    // and must keep their own answer (a plain Uint8Array is not a Buffer).
    value(value) {
      if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
      return this === ctor && ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === `[object ${name}]`;
    },
  });
}
