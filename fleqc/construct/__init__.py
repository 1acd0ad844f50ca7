"""Analytic construction of looped-transformer weights from a library of named blocks.

No training: every weight is written by what it does to named row blocks of the residual stream.
"""
