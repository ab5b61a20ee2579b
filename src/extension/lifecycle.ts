import type * as vscode from 'vscode';

/**
 * A thing that owns other disposables and disposes them with itself, newest first. Features extend it and
 * `_register` what they create, so tearing a feature down never forgets a listener.
 */
export class Disposable implements vscode.Disposable {
  private readonly disposables: { dispose(): unknown }[] = [];
  private disposed = false;

  protected _register<T extends { dispose(): unknown }>(d: T): T {
    if (this.disposed) d.dispose();
    else this.disposables.push(d);
    return d;
  }

  protected get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposables.splice(0).reverse()) {
      try {
        d.dispose();
      } catch {
        // one failing disposable must not keep the others alive
      }
    }
  }
}

/** A bag of disposables that can be emptied and reused (the lifetime of one queue connection). */
export class DisposableStore extends Disposable {
  private items: { dispose(): unknown }[] = [];

  add<T extends { dispose(): unknown }>(d: T): T {
    this.items.push(d);
    return d;
  }

  /** Disposes everything added so far; the store stays usable. */
  clear(): void {
    for (const d of this.items.splice(0).reverse()) {
      try {
        d.dispose();
      } catch {
        // see Disposable.dispose
      }
    }
  }

  override dispose(): void {
    this.clear();
    super.dispose();
  }
}

export function toDisposable(fn: () => void): vscode.Disposable {
  let done = false;
  return {
    dispose() {
      if (done) return;
      done = true;
      fn();
    },
  };
}
