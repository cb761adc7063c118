import { ContractError, EXIT_CODES, InputError, ModelFormatError, ScenimefyError, UsageError, exitCodeFor } from './errors';

describe('typed errors', () => {
  it('carries a stable code, the class name and the file in the message', () => {
    const e = new InputError('not an image (text file)', { file: 'photos/a.png' });
    expect(e).toBeInstanceOf(ScenimefyError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('E_INPUT');
    expect(e.name).toBe('InputError');
    expect(e.file).toBe('photos/a.png');
    expect(e.message).toBe('photos/a.png: not an image (text file)');
  });

  it('does not repeat a file name the message already holds', () => {
    const e = new ModelFormatError('x.pth is truncated', { file: 'x.pth' });
    expect(e.message).toBe('x.pth is truncated');
  });

  it('names the field of a contract violation', () => {
    const e = new ContractError('unknown format "foo"', { file: 'run/checkpoint.json', field: 'format' });
    expect(e.message).toBe('run/checkpoint.json: format: unknown format "foo"');
    expect(e.field).toBe('format');
  });

  it('maps codes to exit statuses in one place', () => {
    expect(exitCodeFor(new InputError('x'))).toBe(EXIT_CODES.someInputsFailed);
    expect(exitCodeFor(new UsageError('x'))).toBe(EXIT_CODES.usage);
    expect(exitCodeFor(new ModelFormatError('x'))).toBe(EXIT_CODES.modelOrContract);
    expect(exitCodeFor(new ContractError('x'))).toBe(EXIT_CODES.modelOrContract);
    expect(exitCodeFor(new Error('boom'))).toBe(EXIT_CODES.internal);
  });
});
