/**
 * A small request/response protocol between the page and its workers. Errors keep their class name
 * (FormatError, PlanError, ...) and message so the page can show them as core wrote them.
 */

export interface RpcError {
  name: string;
  message: string;
  stack?: string;
}

export type RpcMessage =
  | { id: number; kind: 'result'; value: unknown }
  | { id: number; kind: 'error'; error: RpcError }
  | { id: number; kind: 'progress'; done: number; total: number; label: string };

export interface RpcRequest {
  id: number;
  method: string;
  args: unknown[];
}

/** An error raised in a worker, re-created on the page with the worker's class name and message. */
export class WorkerError extends Error {
  constructor(e: RpcError) {
    super(e.message);
    this.name = e.name;
    if (e.stack) this.stack = e.stack;
  }
}

export type ProgressFn = (done: number, total: number, label: string) => void;

export class WorkerClient {
  private next = 1;
  private pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; progress?: ProgressFn }
  >();

  constructor(
    readonly worker: Worker,
    readonly label: string,
  ) {
    worker.onmessage = (ev: MessageEvent<RpcMessage>) => {
      const m = ev.data;
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.kind === 'progress') {
        p.progress?.(m.done, m.total, m.label);
        return;
      }
      this.pending.delete(m.id);
      if (m.kind === 'result') p.resolve(m.value);
      else p.reject(new WorkerError(m.error));
    };
    worker.onerror = (ev: ErrorEvent) => {
      // A worker that fails to load or throws outside a request fails every request waiting on it.
      const err = new Error(`${label} worker failed: ${ev.message || 'could not start'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  call<T>(method: string, args: unknown[] = [], transfer: Transferable[] = [], progress?: ProgressFn): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, progress });
      const req: RpcRequest = { id, method, args };
      this.worker.postMessage(req, transfer);
    });
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  terminate(): void {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error(`${this.label} worker stopped`));
    this.pending.clear();
  }
}

/** What a worker handler returns: a value and the buffers to transfer with it. */
export interface Reply {
  value: unknown;
  transfer?: Transferable[];
}

/**
 * A worker method. It returns its result, a Reply (the result and buffers to transfer), or a promise of
 * either: any value can be a result, so the type is `unknown`, and serveRpc tells a Reply by isReply.
 */
export type Handler = (args: unknown[], progress: ProgressFn) => unknown;

export function isReply(x: unknown): x is Reply {
  return (
    typeof x === 'object' &&
    x !== null &&
    'value' in x &&
    Object.keys(x).every((k) => k === 'value' || k === 'transfer')
  );
}

/** Serve handlers inside a worker. Requests run one at a time in arrival order. */
export function serveRpc(
  scope: { onmessage: ((ev: MessageEvent) => unknown) | null; postMessage: (m: unknown, t?: Transferable[]) => void },
  handlers: Record<string, Handler>,
): void {
  let chain: Promise<void> = Promise.resolve();
  scope.onmessage = (ev: MessageEvent<RpcRequest>) => {
    const { id, method, args } = ev.data;
    chain = chain.then(async () => {
      const progress: ProgressFn = (done, total, label) =>
        scope.postMessage({ id, kind: 'progress', done, total, label });
      try {
        const h = handlers[method];
        if (!h) throw new Error(`worker has no method "${method}"`);
        const out = await h(args, progress);
        if (isReply(out)) scope.postMessage({ id, kind: 'result', value: out.value }, out.transfer ?? []);
        else scope.postMessage({ id, kind: 'result', value: out });
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        scope.postMessage({ id, kind: 'error', error: { name: e.name, message: e.message, stack: e.stack } });
      }
    });
  };
}
