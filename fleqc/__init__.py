"""fleqc: compile FLEQ/SUBLEQ assembly to punch cards and run them on a looped transformer."""

__version__ = "0.1.0"
