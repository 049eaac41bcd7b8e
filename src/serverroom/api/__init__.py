"""HTTP API: one package per OpenAI resource, each a thin router over a service."""
