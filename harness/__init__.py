"""Runs a backend and the reference on each case, measures error, applies the tolerance policy,
checks invariants and writes one CSV row per case to reports/. (Not built yet.)"""
