/*
 * sql.js does not expose its WebAssembly memory, yet that memory is most of what SparkQ's RSS is made of (the
 * SQLite page cache lives in it, and it never shrinks). To report it, the bench watches WebAssembly.instantiate
 * before sql.js loads and keeps the Memory the instance exports. Diagnostics only: the result is passed through.
 */

let captured: WebAssembly.Memory | null = null;
let installed = false;

type Instantiate = (source: unknown, imports?: unknown) => Promise<WebAssembly.WebAssemblyInstantiatedSource | WebAssembly.Instance>;

/** Call before the first QueueService.open in this process. */
export function watchWasmMemory(): void {
  if (installed) return;
  installed = true;
  const wasm = WebAssembly as unknown as { instantiate: Instantiate };
  const original = wasm.instantiate.bind(WebAssembly);
  wasm.instantiate = async (source, imports) => {
    const result = await original(source, imports);
    const instance = result instanceof WebAssembly.Instance ? result : result.instance;
    for (const value of Object.values(instance.exports)) {
      if (value instanceof WebAssembly.Memory) captured = value;
    }
    return result;
  };
}

/** Bytes of sql.js's WebAssembly memory, or NaN when it was not captured. */
export function wasmMemoryBytes(): number {
  return captured ? captured.buffer.byteLength : NaN;
}
