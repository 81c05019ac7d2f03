import * as tf from '@tensorflow/tfjs-core';
import { releasePrepared, retainPrepared } from '../graph/native';

/**
 * Rule-modified parameters (W⁺, W + γ·W⁺, …) of one model, computed on first use and reused by later runs: a
 * rule's parameter modifier is a pure function of the parameter, named by its key. Bounded: past the budget new
 * results are not kept, and the next run starts the cache over (never during a run: its tensors are in use).
 * Owned and disposed by the model.
 */
export class DerivedParams {
  private readonly entries = new Map<tf.Tensor, Map<string, tf.Tensor>>();
  private bytes = 0;
  private overflowed = false;

  constructor(private readonly budgetBytes: number) {}

  /** `make(param)` under `key`: kept (it outlives the caller's scope), or, past the budget, made for this run only. */
  get(param: tf.Tensor, key: string, make: (param: tf.Tensor) => tf.Tensor): tf.Tensor {
    const cached = this.entries.get(param)?.get(key);
    if (cached) return cached;
    const size = param.size * 4;
    if (this.bytes + size > this.budgetBytes) {
      this.overflowed = true;
      return make(param);
    }
    const derived = tf.keep(make(param));
    retainPrepared([derived]);
    if (!this.entries.has(param)) this.entries.set(param, new Map());
    this.entries.get(param)!.set(key, derived);
    this.bytes += size;
    return derived;
  }

  /** Called between runs: after a run that overflowed, the cache starts over with the next run's parameters. */
  beforeRun(): void {
    if (this.overflowed) this.clear();
  }

  clear(): void {
    for (const byKey of this.entries.values()) {
      releasePrepared(byKey.values());
      for (const t of byKey.values()) t.dispose();
    }
    this.entries.clear();
    this.bytes = 0;
    this.overflowed = false;
  }
}
