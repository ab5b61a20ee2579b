import * as assert from 'node:assert/strict';
import { epochToMs, parseRetryAfter, parseRetryIn, parseTryAgainAt, rateLimitError, resetFromText } from '../../../src/worker/executors/agentCommon';
import { claudeRateLimit } from '../../../src/worker/executors/claude';
import { codexRateLimit } from '../../../src/worker/executors/codex';

/** The pure parsing behind the 'rate-limited' outcome: which agent errors are usage/rate limits, and when they reset. */

const NOW = new Date(2026, 10, 21, 6, 19, 30).getTime(); // local time, as codex prints it

describe('rate limits: parsing reset times', () => {
  it('reads relative waits: "try again in 20s", "1m30s", "1.5s", "120ms", "2 minutes", "1h 5m"', () => {
    assert.equal(parseRetryIn('Rate limit reached for gpt-5. Please try again in 20s.'), 20_000);
    assert.equal(parseRetryIn('Please try again in 1m30s.'), 90_000);
    assert.equal(parseRetryIn('try again in 1.5s'), 1_500);
    assert.equal(parseRetryIn('try again in 120ms'), 120);
    assert.equal(parseRetryIn('Try again in 2 minutes'), 120_000);
    assert.equal(parseRetryIn('retry in 1h 5m'), 3_900_000);
    assert.equal(parseRetryIn('try again in 2 months'), undefined);
    assert.equal(parseRetryIn('the tests failed in 20s'), undefined);
  });

  it("reads codex's local clock times, today or with a date", () => {
    assert.equal(parseTryAgainAt('… or try again at 7:19 AM.', NOW), new Date(2026, 10, 21, 7, 19).getTime());
    assert.equal(parseTryAgainAt('Try again at 12:05 PM.', NOW), new Date(2026, 10, 21, 12, 5).getTime());
    assert.equal(parseTryAgainAt('Try again at 12:05 AM.', NOW), new Date(2026, 10, 21, 0, 5).getTime());
    assert.equal(parseTryAgainAt('or try again at Nov 23rd, 2026 6:21 AM.', NOW), new Date(2026, 10, 23, 6, 21).getTime());
    assert.equal(parseTryAgainAt('try again at Jan 1st, 2027 11:59 PM', NOW), new Date(2027, 0, 1, 23, 59).getTime());
    assert.equal(parseTryAgainAt('Try again later.', NOW), undefined);
  });

  it('reads retry-after seconds and dates, epochs in s or ms', () => {
    assert.equal(parseRetryAfter('30', NOW), NOW + 30_000);
    assert.equal(parseRetryAfter('2026-11-21T08:00:00Z', NOW), Date.UTC(2026, 10, 21, 8));
    assert.equal(parseRetryAfter('Sat, 21 Nov 2026 08:00:00 GMT', NOW), Date.UTC(2026, 10, 21, 8));
    assert.equal(parseRetryAfter('soon', NOW), undefined);
    assert.equal(epochToMs(1_795_245_809), 1_795_245_809_000);
    assert.equal(epochToMs(1_795_245_809_000), 1_795_245_809_000);
    assert.equal(epochToMs(0), undefined);
  });

  it('finds the reset in any of the forms: resets_at, resets_in_seconds, |epoch, clock, relative, retry-after', () => {
    assert.equal(resetFromText('{"error":{"type":"usage_limit_reached","resets_at":1795245809,"resets_in_seconds":3600}}', NOW), 1_795_245_809_000);
    assert.equal(resetFromText('{"error":{"resets_in_seconds":600}}', NOW), NOW + 600_000);
    assert.equal(resetFromText('Claude AI usage limit reached|1795245809', NOW), 1_795_245_809_000);
    assert.equal(resetFromText('try again at 7:19 AM.', NOW), new Date(2026, 10, 21, 7, 19).getTime());
    assert.equal(resetFromText('Please try again in 20s.', NOW), NOW + 20_000);
    assert.equal(resetFromText('retry-after: 30', NOW), NOW + 30_000);
    assert.equal(resetFromText('exceeded retry limit, last status: 429 Too Many Requests', NOW), undefined);
  });

  it('says which agent, which limit and when, in UTC', () => {
    assert.equal(rateLimitError('Codex', 'usage', { reason: 'x', resetAt: Date.UTC(2026, 10, 21, 8) }), 'Codex hit a usage limit (resets at 2026-11-21T08:00:00Z): x');
    assert.equal(rateLimitError('Claude', 'rate', { reason: 'y' }), 'Claude hit a rate limit (reset time unknown): y');
  });
});

describe('rate limits: codex errors', () => {
  it('recognises the forms codex 0.169 prints, with their reset times', () => {
    const usage = codexRateLimit('You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 7:19 AM.', NOW);
    assert.deepEqual(usage && { kind: usage.kind, resetAt: usage.resetAt }, { kind: 'usage', resetAt: new Date(2026, 10, 21, 7, 19).getTime() });
    assert.deepEqual(codexRateLimit('You’ve hit your usage limit. Try again later.', NOW)?.kind, 'usage');
    assert.equal(codexRateLimit('You’ve hit your usage limit. Try again later.', NOW)?.resetAt, undefined);
    assert.equal(codexRateLimit('Quota exceeded. Check your plan and billing details.', NOW)?.kind, 'usage');
    assert.equal(codexRateLimit('stream disconnected before completion: The usage limit has been reached', NOW)?.kind, 'usage');
    const rate = codexRateLimit('exceeded retry limit, last status: 429 Too Many Requests', NOW);
    assert.deepEqual(rate, { kind: 'rate', reason: 'exceeded retry limit, last status: 429 Too Many Requests' });
    const inN = codexRateLimit('rate limit exceeded: Rate limit reached for gpt-5 in organization org-x. Please try again in 1m30s.', NOW);
    assert.deepEqual(inN && { kind: inN.kind, resetAt: inN.resetAt }, { kind: 'rate', resetAt: NOW + 90_000 });
  });

  it('never takes an ordinary failure for a limit', () => {
    for (const m of [
      'mock says: bad request',
      'exceeded retry limit, last status: 500 Internal Server Error',
      'stream disconnected before completion: upstream fell over',
      'Connection failed: error sending request for url (http://127.0.0.1:1/v1/responses)',
      'unexpected status 401 Unauthorized: invalid api key',
      'the model hit a limit of 10 tool calls',
    ]) assert.equal(codexRateLimit(m, NOW), undefined, m);
  });
});

describe('rate limits: claude results', () => {
  const result = (o: Record<string, unknown>) => ({ type: 'result', subtype: 'success', ...o });

  it('the subscription text "Claude AI usage limit reached|<epoch>" is a usage limit even without is_error', () => {
    const r = claudeRateLimit(result({ is_error: false, result: 'Claude AI usage limit reached|1795245809' }), undefined, NOW);
    assert.deepEqual(r, { kind: 'usage', reason: 'Claude AI usage limit reached', resetAt: 1_795_245_809_000 });
    assert.equal(claudeRateLimit(result({ is_error: true, result: 'Claude AI usage limit reached' }), undefined, NOW, 1_000)?.resetAt, 1_000);
  });

  it('an API 429 is a rate limit (by status, error type or the assistant error), the reset from the text when there', () => {
    const r = claudeRateLimit(result({ is_error: true, api_error_status: 429, api_error_type: 'rate_limit_error', result: 'API Error: Request rejected (429) · Rate limited' }), 'rate_limit', NOW);
    assert.deepEqual(r, { kind: 'rate', reason: 'API Error: Request rejected (429) · Rate limited' });
    assert.equal(claudeRateLimit(result({ is_error: true, result: 'API Error: 429 slow down, try again in 30s' }), 'rate_limit', NOW)?.resetAt, NOW + 30_000);
    assert.equal(claudeRateLimit(result({ is_error: true, result: "You've hit your session limit" }), undefined, NOW)?.kind, 'usage');
  });

  it('never takes an ordinary result or failure for a limit', () => {
    assert.equal(claudeRateLimit(result({ is_error: false, result: 'I checked the rate limit code: Claude AI usage limit reached|123 is the format.' }), undefined, NOW), undefined);
    assert.equal(claudeRateLimit(result({ is_error: false, result: 'Done. The usage limit reached its maximum in the test.' }), undefined, NOW), undefined);
    assert.equal(claudeRateLimit(result({ is_error: true, api_error_status: 500, result: 'API Error: 500 mock overloaded' }), 'server_error', NOW), undefined);
    assert.equal(claudeRateLimit(result({ is_error: true, result: 'API Error: Connection refused' }), 'unknown', NOW), undefined);
  });
});
