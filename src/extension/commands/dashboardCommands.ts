import type { CommandFactory } from './commandContext';

/** `SparkQ: Open Dashboard`: opens (or reveals) the dashboard panel; readable in Restricted Mode too. */
export const openDashboard: CommandFactory = (ctx) => () => {
  ctx.dashboard.open();
  return Promise.resolve({ opened: true });
};
