"""The front end: a Quart-Trio app (REST and WebSocket) in front of the engine."""
