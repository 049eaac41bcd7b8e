"""The Responses API: stored, streamed and background responses."""
