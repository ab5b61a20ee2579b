import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultConfig, loadConfigFile, type SparkqConfig } from '../core/config';
import { errorMessage } from '../core/errors';
import { configFileOf } from './workspace';

/** sparkq.yml of the workspace, or the defaults (project = folder name) when there is none. Throws ConfigError. */
export function loadWorkspaceConfig(workspaceDir: string, log?: (line: string) => void): SparkqConfig {
  const file = configFileOf(workspaceDir);
  const project = path.basename(workspaceDir);
  if (!fs.existsSync(file)) return defaultConfig(project);
  const { config, warnings } = loadConfigFile(file, { defaultProject: project });
  for (const w of warnings) log?.(`sparkq.yml: ${w}`);
  return config;
}

/**
 * The owner's view of sparkq.yml: reloaded when the file changes (debounced) or when asked. A file with errors is
 * logged and the configuration in force stays, so a half-saved edit never stops the queue.
 */
export class ConfigWatcher {
  private watcher: fs.FSWatcher | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly workspaceDir: string,
    private readonly log: (line: string) => void,
    /** Takes a configuration that loaded without errors. */
    private readonly apply: (config: SparkqConfig) => void,
  ) {}

  watch(): void {
    try {
      this.watcher = fs.watch(this.workspaceDir, { persistent: false }, (_event, name) => {
        if (name !== null && name.toString() !== path.basename(configFileOf(this.workspaceDir))) return;
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => this.reload(), 150);
        this.reloadTimer.unref();
      });
      this.watcher.on('error', (e) => this.log(`watching sparkq.yml stopped: ${errorMessage(e)}`));
    } catch (e) {
      this.log(`cannot watch sparkq.yml (changes need a restart of the owner): ${errorMessage(e)}`);
    }
  }

  /** Re-reads sparkq.yml now. Returns the problem when it has errors (the configuration in force stays), else null. */
  reload(): string | null {
    if (this.stopped) return null;
    try {
      this.apply(loadWorkspaceConfig(this.workspaceDir, this.log));
      this.log('sparkq.yml reloaded');
      return null;
    } catch (e) {
      const problem = errorMessage(e);
      this.log(`sparkq.yml not reloaded, the previous configuration stays in force: ${problem}`);
      return problem;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.watcher?.close();
  }
}
