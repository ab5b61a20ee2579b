/*
 * Numbers and dates as the dashboard writes them, without Intl: the first use of Intl in a page starts ICU, which cost
 * the first page of tasks 20–40 ms in every new webview here (every row has a date), more than the rest of the page's
 * script. Counts are grouped by thousands with commas, as `toLocaleString('en-US')` writes them; dates are the local
 * time as YYYY-MM-DD HH:MM:SS, the same in every language and sortable as text.
 */

/** 1234567 → "1,234,567" (integers; anything else as `toLocaleString('en-US')` writes it). */
export function formatCount(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US');
  return String(n).replace(/\B(?=(\d{3})+$)/g, ',');
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** An ISO time or epoch milliseconds as local "2026-12-07 14:03:09" ("Invalid Date" when it is not a time). */
export function formatDateTime(when: string | number): string {
  const d = new Date(when);
  if (Number.isNaN(d.getTime())) return 'Invalid Date';
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
