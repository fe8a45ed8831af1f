"""The HTTP layer: the Litestar app, the lifespan that wires every feature, its routes, problems, OpenAPI and the
console."""
