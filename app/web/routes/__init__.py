"""The routes, one module per resource: each calls the features, never a store."""
