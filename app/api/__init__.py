"""The HTTP layer: Litestar routes, parameters, problem mapping and OpenAPI; the only web code besides main."""
