"""Monitoring: drift and performance reports, alert composition and delivery."""
