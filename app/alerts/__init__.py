"""Alerting: rules, their evaluation after each commit and on a timer, alerts' lifecycle, and webhook delivery."""
