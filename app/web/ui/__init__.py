"""The operator console at /console: a static page and its ES modules, served by the API with pinned libraries."""
