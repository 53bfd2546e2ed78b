"""End-to-end tests: real HTTP and WebSocket against ``python -m api serve``."""
