"""Choosing the wheels to install: finding candidates on indexes, resolving requirements."""
