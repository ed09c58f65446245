"""Logbot edge collector."""
