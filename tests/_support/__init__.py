"""Helpers shared by the tests of several packages.

The only test code imported across test folders.
"""
