"""Logbot edge agent."""
