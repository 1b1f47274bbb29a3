"""Helpers shared by test modules (fixtures that every test may use are registered in conftest.py)."""
