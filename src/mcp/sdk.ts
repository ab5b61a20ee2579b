/*
 * The MCP SDK, as src/mcp uses it: the one module that imports it. The CLI's build bundles the SDK apart from the
 * program (dist/cli-mcp-sdk.js, see scripts/lib/cli-bundle.js), so that every other command does not carry a third
 * of a megabyte it never runs; only `sparkq mcp` loads it.
 */
export {
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  type ReadResourceResult,
  ResourceNotFoundError,
  ResourceTemplate,
  type StandardSchemaWithJSON,
} from '@modelcontextprotocol/server';
export { StdioServerTransport } from '@modelcontextprotocol/server/stdio';
