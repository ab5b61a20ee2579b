import type { SparkqConfig } from '../config';
import { SparkqError } from '../errors';
import { isRecord } from '../guards';
import { DEFAULT_MAX_ROUNDS, type JsonValue, LIMITS, type TaskChange, type TaskValidation, type ValidateSpec } from '../model';

/*
 * Validators, the rules both stores share: which spec a task gets, what its validation task is asked and given, how a
 * validation task's outcome becomes a verdict, and what a failed round does to the task's prompt. The stores apply
 * them in the change that finishes the task (src/core/queue/attempts.ts, src/team/validation.ts).
 */

/**
 * The validator of an enqueue: its own `validate`, else its tool's in sparkq.yml; undefined for none. The validator's
 * tool must exist (invalid-input naming it), and the spec is returned with maxRounds filled in.
 */
export function validateSpecOf(config: SparkqConfig, tool: string, given: ValidateSpec | undefined, what: string): ValidateSpec | undefined {
  const spec = given ?? config.tools[tool]?.validate;
  if (spec === undefined) return undefined;
  const from = given ? `${what}: validate` : `tool ${tool}'s validate in sparkq.yml`;
  const validator = config.tools[spec.tool];
  if (!validator) {
    throw new SparkqError('invalid-input', `${from}.tool names ${JSON.stringify(spec.tool)}, which is not a tool; tools in sparkq.yml: ${Object.keys(config.tools).sort().join(', ')}`);
  }
  if (validator.knownKind === 'script' && !spec.prompt?.trim()) {
    throw new SparkqError('invalid-input', `${from}.prompt: a script validator (${spec.tool}) runs the script its prompt names, with arguments (e.g. "check.sh --strict"); its exit status is the verdict`);
  }
  return { ...spec, maxRounds: spec.maxRounds ?? DEFAULT_MAX_ROUNDS };
}

/** A validation as stored (JSON text), with `status` first so that a prefix match finds pending ones. */
export function validationText(v: TaskValidation): string {
  return JSON.stringify({ status: v.status, round: v.round, maxRounds: v.maxRounds, by: v.by, feedback: v.feedback, spec: v.spec });
}

/** The stored text of a task whose validation is pending starts with this (see validationText). */
export const PENDING_PREFIX = '{"status":"pending"';

export function parseValidation(text: unknown): TaskValidation | null {
  return typeof text === 'string' ? (JSON.parse(text) as TaskValidation) : null;
}

/** The validation of a task's first round. */
export function firstRound(spec: ValidateSpec, feedback: string | null = null): TaskValidation {
  return { status: 'pending', round: 1, maxRounds: spec.maxRounds ?? DEFAULT_MAX_ROUNDS, by: [], feedback, spec };
}

/**
 * Whether a task counts as done for the tasks that wait on it: succeeded, and either not validated or passed. A task
 * whose result is not checked yet holds its dependents back.
 */
export function isDone(status: unknown, validation: unknown): boolean {
  if (status !== 'succeeded') return false;
  return typeof validation !== 'string' || parseValidation(validation)!.status === 'passed';
}

/** What the checked task left, for its validation task's prompt and payload. */
export interface CheckedResult {
  id: string;
  prompt: string | null;
  summary: string | null;
  data: JsonValue | null;
  change: TaskChange | null;
  round: number;
  maxRounds: number;
}

/**
 * What a validated task's success hands its validation task, from the task's row (both stores' columns: id, prompt,
 * plan_id, plan_key) and the finish that succeeded it (data and change as stored JSON): the result it checks, and the
 * plan it joins under the checked task's name (`tasks --plan` lists it, `report --plan` counts it).
 */
export function checkOf(
  row: Record<string, unknown>,
  finish: { summary: string | null; data: string | null; change?: string | null | undefined },
  v: Pick<TaskValidation, 'round' | 'maxRounds'>,
): { checked: CheckedResult; plan: { planId: string; planKey: string } | null } {
  const planId = row['plan_id'];
  return {
    checked: {
      id: row['id'] as string,
      prompt: (row['prompt'] as string | null) ?? null,
      summary: finish.summary,
      data: finish.data === null ? null : (JSON.parse(finish.data) as JsonValue),
      change: typeof finish.change === 'string' ? (JSON.parse(finish.change) as TaskChange) : null,
      round: v.round,
      maxRounds: v.maxRounds,
    },
    plan: typeof planId === 'string' && planId !== '' ? { planId, planKey: (row['plan_key'] as string | null) ?? '' } : null,
  };
}

/** The payload of a validation task: `{ validates, round, summary, data, change }`. */
export function validationPayload(r: CheckedResult): JsonValue {
  return {
    validates: r.id,
    round: r.round,
    summary: r.summary,
    data: r.data,
    change: r.change === null ? null : (JSON.parse(JSON.stringify(r.change)) as JsonValue),
  };
}

const fence = (text: string): string => {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}\n${text}\n${f}`;
};

/**
 * The prompt of a validation task: what to check, the task's prompt, its result and change, how to give the verdict.
 * A script validator's prompt is the spec's as written (the script and its arguments); it reads the rest from its
 * payload (SPARKQ_VALIDATE_FILE).
 */
export function validationPrompt(spec: ValidateSpec, r: CheckedResult, toolKind: string): string {
  if (toolKind === 'script') return spec.prompt ?? '';
  const parts: string[] = [];
  parts.push(spec.prompt?.trim() || 'Check the result of the task below: does it do what its prompt asks, correctly and completely?');
  parts.push(`## The task (${r.id}, round ${r.round} of ${r.maxRounds})\n\n${r.prompt ?? '(no prompt: see its payload)'}`);
  parts.push(`## Its summary\n\n${r.summary ?? '(none)'}`);
  if (r.data !== null) parts.push(`## Its result data (JSON)\n\n${fence(JSON.stringify(r.data, null, 2))}`);
  if (r.change !== null) {
    const c = r.change;
    const files = c.files.map((f) => `- ${f.status} ${f.path}`).join('\n');
    const more = c.filesChanged > c.files.length ? `\n- … and ${c.filesChanged - c.files.length} more` : '';
    parts.push(
      `## Its change\n\nBranch ${c.branch}${c.commit ? `, commit ${c.commit}` : ' (no commit)'}, from ${c.baseRef ?? c.baseCommit}; ` +
        `${c.filesChanged} files changed, +${c.insertions} −${c.deletions}.\n\n${files}${more}`,
    );
  }
  parts.push(
    '## Your verdict\n\n' +
      'Give it for this validation task, whose id is in $SPARKQ_TASK_ID (not the id of the task you check): ' +
      '`sparkq verdict "$SPARKQ_TASK_ID" pass|fail "feedback"`, or the `verdict` tool of SparkQ\'s MCP server, or complete this task with data ' +
      '`{"verdict": "pass"|"fail", "feedback": "…"}`. On fail, say precisely what to fix: the feedback goes to the next round.',
  );
  const text = parts.join('\n\n');
  return text.length > LIMITS.prompt ? text.slice(0, LIMITS.prompt - 20) + '\n[… cut]' : text;
}

export interface Verdict {
  pass: boolean;
  feedback: string | null;
}

export const NO_VERDICT = 'the validator gave no verdict: complete with data {verdict: pass|fail, feedback}';

/**
 * The verdict of a validation task that succeeded: data `{verdict, feedback?}` says it, whatever the tool; else a
 * script validator passes (its exit status was the verdict); anything else fails the round, never a silent pass.
 */
export function verdictOfSuccess(toolKind: string | undefined, dataText: string | null): Verdict {
  const data = dataText === null ? null : (JSON.parse(dataText) as unknown);
  if (isRecord(data) && (data['verdict'] === 'pass' || data['verdict'] === 'fail')) {
    const fb = data['feedback'];
    if (fb === undefined || fb === null || typeof fb === 'string') {
      const extra = Object.keys(data).filter((k) => k !== 'verdict' && k !== 'feedback');
      if (extra.length === 0) return { pass: data['verdict'] === 'pass', feedback: typeof fb === 'string' && fb.trim() !== '' ? fb.trim() : null };
    }
  }
  if (toolKind === 'script') return { pass: true, feedback: null };
  return { pass: false, feedback: NO_VERDICT };
}

/** The error of a task whose round failed and that goes on to the next round. */
export function roundFailed(v: TaskValidation, feedback: string): string {
  return `validation round ${v.round} of ${v.maxRounds} failed: ${feedback}`;
}

/** The error of a task whose last round failed. */
export function seriesFailed(v: TaskValidation, feedback: string): string {
  return `validation failed after ${v.maxRounds} rounds: ${feedback}`;
}

const FEEDBACK_HEADING = '## Validator feedback (round ';

/** A prompt for the next round: the task's prompt with the validator's feedback under a heading. */
export function withFeedback(prompt: string | null, v: TaskValidation, feedback: string): string {
  const text = `${prompt ?? ''}\n\n${FEEDBACK_HEADING}${v.round} of ${v.maxRounds})\n\n${feedback}`.replace(/^\n+/, '');
  return text.length > LIMITS.prompt ? text.slice(text.length - LIMITS.prompt) : text;
}

/**
 * What a requeued copy of a validated task starts with. After a failed last round (a person requeues it): a fresh
 * series, round 1, with the last feedback in its prompt. A task that failed by itself keeps its round.
 */
export function requeuedValidation(prompt: string | null, v: TaskValidation | null): { prompt: string | null; validation: TaskValidation | null } {
  if (v === null) return { prompt, validation: null };
  if (v.status === 'failed') {
    const feedback = v.feedback ?? 'the validator failed the result';
    return { prompt: withFeedback(prompt, v, feedback), validation: { ...firstRound(v.spec, feedback), by: [...v.by] } };
  }
  return { prompt, validation: { ...v, status: 'pending' } };
}

/** The copy that is the next round of a task whose round failed. */
export function nextRound(prompt: string | null, v: TaskValidation, feedback: string): { prompt: string; validation: TaskValidation } {
  return { prompt: withFeedback(prompt, v, feedback), validation: { ...v, status: 'pending', round: v.round + 1, feedback } };
}

/** A script task's prompt without the validator feedback of its earlier rounds: the script and its arguments. */
export function commandOf(prompt: string): string {
  const at = prompt.indexOf(`\n\n${FEEDBACK_HEADING}`);
  return at < 0 ? prompt : prompt.slice(0, at);
}

/** Feedback as kept: trimmed, and cut at the error limit. */
export function feedbackText(text: string): string {
  const t = text.trim();
  return t.length > LIMITS.error ? t.slice(0, LIMITS.error) + ' […]' : t;
}
