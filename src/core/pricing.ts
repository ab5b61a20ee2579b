/*
 * What tokens cost: US dollars per million tokens, per model. The report uses it to say what a plan's Codex tokens
 * (often run on a subscription, with no cost recorded) would have cost if billed at a model's API prices.
 */

export interface ModelPrice {
  /** USD per million input tokens that were not read from the cache. */
  input: number;
  /** USD per million input tokens read from the cache. */
  cachedInput: number;
  /** USD per million output tokens (reasoning tokens are billed as output and already counted in it). */
  output: number;
}

/**
 * Built-in defaults, meant to be overridden in sparkq.yml (`pricing:`): the standard (non-batch) API list prices that
 * OpenAI (openai.com/api/pricing) and Anthropic (anthropic.com/pricing, cache reads) published for these models in
 * 2025. Prices change; SparkQ never fetches them.
 */
export const DEFAULT_PRICING: Readonly<Record<string, Readonly<ModelPrice>>> = Object.freeze({
  'gpt-5': Object.freeze({ input: 1.25, cachedInput: 0.125, output: 10 }),
  'gpt-5-codex': Object.freeze({ input: 1.25, cachedInput: 0.125, output: 10 }),
  'gpt-5-mini': Object.freeze({ input: 0.25, cachedInput: 0.025, output: 2 }),
  'claude-opus-4-5': Object.freeze({ input: 5, cachedInput: 0.5, output: 25 }),
  'claude-sonnet-4-5': Object.freeze({ input: 3, cachedInput: 0.3, output: 15 }),
  'claude-haiku-4-5': Object.freeze({ input: 1, cachedInput: 0.1, output: 5 }),
});

export interface TokenCounts {
  /** All input tokens, the cached ones included (as both Codex and Claude Code runs are recorded). */
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
}

/** The cost of `t` at `price`, in USD rounded to a millionth of a dollar (as the report's other costs are). */
export function costAt(price: ModelPrice, t: TokenCounts): number {
  const cached = Math.min(t.cachedInputTokens, t.inputTokens);
  const micro = (t.inputTokens - cached) * price.input + cached * price.cachedInput + t.outputTokens * price.output;
  // micro is USD per million tokens × tokens: millionths of a dollar.
  return Math.round(micro) / 1e6;
}
