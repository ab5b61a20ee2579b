/** "1 task", "3 tasks", "0.5 days": a count with its noun, never "task(s)". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
