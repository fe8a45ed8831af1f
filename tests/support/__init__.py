"""Helpers shared by the tests: imported by test modules and conftest files, never the other way round."""
