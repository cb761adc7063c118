import * as browser from './browser';
import * as node from './index';

describe('the browser and Node entries', () => {
  it('the Node entry exports every name of the browser entry, the same value except where it adds a default runtime', () => {
    const withNodeDefaults = new Set(['createOnnxSession', 'createTiledGenerator']);
    for (const [name, value] of Object.entries(browser)) {
      expect(Object.hasOwn(node, name)).toBe(true);
      if (!withNodeDefaults.has(name)) expect([name, (node as Record<string, unknown>)[name]]).toEqual([name, value]);
    }
    // The Node forms take the browser forms' arguments too (a runtime first).
    expect(typeof node.createOnnxSession).toBe('function');
    expect(typeof node.createTiledGenerator).toBe('function');
  });
});
