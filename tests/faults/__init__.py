"""Faults that once lost rows or published wrong numbers silently, one test each (docs/reliability.md)."""
