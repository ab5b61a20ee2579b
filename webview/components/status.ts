import { type TaskRow, validationBadge } from '../../src/shared/dashboardProtocol';
import { type TemplateResult, html, nothing } from '../lit';
import { formatDateTime } from '../format';

/** A task's status, its stale badge, why a queued task is not claimable yet, and where its validation stands. */
export function statusCell(t: Pick<TaskRow, 'status' | 'stale' | 'waitingOn' | 'blockedBy' | 'notBefore' | 'validation'>): TemplateResult {
  return html`<td>
    <span class="status status-${t.status}">${t.status}</span>${t.stale
      ? html`<vscode-badge class="stale-badge" variant="counter" title="running past its timeout">stale</vscode-badge>`
      : nothing}${dependencyBadges(t)}${validationMarker(t)}
  </td>`;
}

/** The validation badge (validating · round 1 of 2, passed, check failed · round 2 of 2) of a validated task. */
export function validationMarker(t: Pick<TaskRow, 'status' | 'validation'>): TemplateResult | typeof nothing {
  const badge = validationBadge(t);
  if (badge === null || t.validation === null) return nothing;
  return html` <span class=${`validation-badge validation-${t.validation.status}`} data-validation=${t.validation.status} title=${`Validation: ${badge}`}>${badge}</span>`;
}

/** Failed tasks a queued task waits on, tasks it waits on that are not done yet, a retry delay. */
function dependencyBadges(t: Pick<TaskRow, 'status' | 'waitingOn' | 'blockedBy' | 'notBefore'>): TemplateResult | typeof nothing {
  if (t.status !== 'queued') return nothing;
  const waiting = t.waitingOn.filter((id) => !t.blockedBy.includes(id));
  const n = t.blockedBy.length;
  return html`${n > 0
    ? html`<span class="blocked" title=${`Blocked by ${n === 1 ? 'a failed task' : 'failed tasks'}: ${t.blockedBy.join(', ')}. Requeue ${n === 1 ? 'it' : 'them'} to release this task.`}
        ><vscode-badge class="blocked-badge">blocked</vscode-badge
        ><span class="blocked-ids mono">${` ${t.blockedBy.slice(0, 3).join(', ')}${n > 3 ? ` +${n - 3}` : ''}`}</span></span
      >`
    : nothing}${waiting.length > 0 ? html`<vscode-badge class="waiting-badge" title=${`Waiting on ${waiting.join(', ')}`}>waiting ${waiting.length}</vscode-badge>` : nothing}${t.notBefore
    ? html`<span class="retry-at muted" title=${t.notBefore}>${` retry at ${formatDateTime(t.notBefore)}`}</span>`
    : nothing}`;
}
