"""Instruction sets: the function table of FLEQ and plain-Python reference interpreters.

The reference interpreters are the oracle every backend is compared with, step by step.
"""
