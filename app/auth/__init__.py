"""The trust boundary: credentials (robot tokens, operator keys with scopes), who holds them, and what they allow."""
