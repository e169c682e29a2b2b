"""Convergence: the ranges of a reconcile pass (plan.py), a range compared on both sides and
narrowed down to the keys that differ (diff.py), and the deletes found, written for the
load and checked against the source again just before it deletes (deletes.py)."""
