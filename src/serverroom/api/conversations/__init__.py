"""The Conversations API: durable lists of items that responses can build on."""
