// Test-only (see package.json): what VS Code's MCP registry holds, as the workbench publishes it to extensions through
// the proposed `vscode.lm.mcpServerDefinitions`. SparkQ's integration tests read it to see their provider's server the
// way agent mode would, rather than trusting what SparkQ says it registered.
const vscode = require('vscode');

/** The label of the probe's own server (never started): once VS Code lists it, the registry has taken in every
 * collection registered before the probe's, SparkQ's included (the extension host sends them in order). */
const MARKER = 'Probe marker';

function plain(d) {
  const stdio = d instanceof vscode.McpStdioServerDefinition;
  return {
    kind: stdio ? 'stdio' : 'http',
    label: d.label,
    command: stdio ? d.command : undefined,
    args: stdio ? [...d.args] : undefined,
    env: stdio ? { ...d.env } : undefined,
    cwd: stdio && d.cwd ? d.cwd.fsPath : undefined,
    version: d.version,
  };
}

exports.activate = (context) => {
  context.subscriptions.push(
    vscode.lm.registerMcpServerDefinitionProvider('probe.marker', {
      provideMcpServerDefinitions: () => [new vscode.McpStdioServerDefinition(MARKER, process.execPath, ['-e', ''])],
    }),
  );
  return {
    marker: MARKER,
    definitions: () => vscode.lm.mcpServerDefinitions.map(plain),
    onDidChange: vscode.lm.onDidChangeMcpServerDefinitions,
  };
};
