"""Simulator package."""
