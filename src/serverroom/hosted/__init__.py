"""Tools the server runs on a model's behalf: remote MCP servers (``mcp_client``)."""
