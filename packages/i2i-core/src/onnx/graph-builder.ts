/**
 * The small ONNX graph builder the generator export (export/onnx.ts) and the tiled engine's pass graphs
 * (infer/tiling/chain-graph.ts) share: attributes, initializers, value infos and a node list, written with
 * `onnx-proto`'s generated types. Browser-safe: it only builds bytes.
 */
import { onnx } from 'onnx-proto';

export const FLOAT = onnx.TensorProto.DataType.FLOAT;
export const INT64 = onnx.TensorProto.DataType.INT64;

export function intAttr(name: string, i: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

export function intsAttr(name: string, ints: readonly number[]): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...ints] };
}

export function floatAttr(name: string, f: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

export function stringAttr(name: string, value: string): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value) };
}

/** The bytes of a typed array as ONNX raw_data, without a copy. */
export function littleEndianBytes(view: Float32Array | BigInt64Array): Uint8Array {
  // Typed arrays use the host's byte order; ONNX raw_data is little-endian, like every host Node and browsers run on.
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export function int64Bytes(values: readonly number[]): Uint8Array {
  return littleEndianBytes(BigInt64Array.from(values, (v) => BigInt(v)));
}

export function floatTensor(name: string, dims: readonly number[], values: Float32Array): onnx.ITensorProto {
  return { name, dataType: FLOAT, dims: [...dims], rawData: littleEndianBytes(values) };
}

export function int64Tensor(name: string, values: readonly number[]): onnx.ITensorProto {
  return { name, dataType: INT64, dims: [values.length], rawData: int64Bytes(values) };
}

/** A graph input or output: a tensor of `elemType` whose dims are fixed (numbers) or named (strings). */
export function tensorValueInfo(name: string, elemType: number, dims: ReadonlyArray<number | string>): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** IR version that goes with an opset (onnx/helper.py VERSION_TABLE). */
export function irVersionForOpset(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

/** Accumulates a graph's nodes, initializers, inputs and outputs; node methods return the value they produce. */
export class OnnxGraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly initialized = new Set<string>();

  /** Appends `op` named `<op>_<n>`; its output is `output`, or `<op lowercase>_<n>`. */
  node(op: string, inputs: readonly string[], attributes: onnx.IAttributeProto[] = [], output?: string): string {
    const n = this.nodes.length;
    const out = output ?? `${op.toLowerCase()}_${n}`;
    this.nodes.push({ name: `${op}_${n}`, opType: op, input: [...inputs], output: [out], attribute: attributes });
    return out;
  }

  /** Adds the initializer `make()` builds unless one of that name exists; returns the name either way. */
  initializer(name: string, make: () => onnx.ITensorProto): string {
    if (!this.initialized.has(name)) {
      this.initializers.push({ ...make(), name });
      this.initialized.add(name);
    }
    return name;
  }

  /** The serialized ModelProto of this graph. */
  encode(model: Omit<onnx.IModelProto, 'graph'> & { graphName: string }): Uint8Array {
    const { graphName, ...rest } = model;
    return onnx.ModelProto.encode({
      ...rest,
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    }).finish();
  }
}
