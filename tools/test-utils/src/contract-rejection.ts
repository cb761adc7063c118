/** The one-line message with which a contract refuses `value` (as JSON text named `file`); fails unless it is a ContractError. */
import { ContractError, parseContract, type ArtifactHeader, type Contract } from '@scenimefy/io';

export function contractRejection<T extends ArtifactHeader>(value: unknown, file: string, contract: Contract<T>): string {
  try {
    parseContract(JSON.stringify(value), file, contract);
  } catch (error) {
    expect(error).toBeInstanceOf(ContractError);
    return (error as Error).message;
  }
  throw new Error(`expected ${file} to be refused with a ContractError`);
}
