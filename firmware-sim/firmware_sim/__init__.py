"""Logbot edge fleet simulator."""
