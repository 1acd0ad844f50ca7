"""Helpers shared by the tests (no tests here): the case table, the lockstep checks, the program
generators, the SUBLEQ corpus's location, the numpy twins of the applications, a plugin machine."""
