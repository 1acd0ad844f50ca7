"""What the command line needs to know of each built-in machine before it runs one, as plain data:
its title, default columns, file suffixes, whether it reads the FLEQ language, and the options it
adds (``--bits``, ``--cell``, ``--memory``, ``--input``). Here, so that ``fleqc --help`` and
``fleqc run prog.fleq`` build their click options and pick a file's machine without importing every
machine package (their weight recipes, reference interpreters and card codecs: tens of
milliseconds of start-up). Each machine's class takes these values from here (one
home); fleqc.machines.about_machine gives the same for a machine registered without an entry here
(by importing it). tests/test_machines.py checks that every entry agrees with its machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleqc.machines.base import MachineOption


@dataclass(frozen=True)
class About:
    name: str
    title: str
    default_columns: int
    suffixes: tuple[str, ...]
    options: tuple[MachineOption, ...]
    fleq_language: bool = True  # programs in the FLEQ language (a dialect of its own), else its own format


BITS = MachineOption(
    "bits", short="-N",
    help="SUBLEQ: integer width (default 16, or the program's .bits); classic: word width, 16 or 32 (default 32).",
)
CELL = MachineOption("cell", metavar="C",
                     help="FLEQ: cells hold up to C x C reals (default 8, or the program's largest shape).")
CLASSIC_MAX_INPUT = (1 << 12) - 1  # the input tape's cells (fleqc.machines.classic.config.MAX_TAPE) less one
MEMORY = MachineOption(
    "memory", metavar="WORDS",
    help="classic: words of memory, a power of two up to 65536 (default: the image rounded up to one).",
)
INPUT = MachineOption("input", metavar="FILE", help="classic: the bytes the program reads (a file, or - for standard "
                      f"input), at most {CLASSIC_MAX_INPUT:,}.", commands=("build", "run", "debug"), integer=False,
                      reads_file=True, runtime=True, max_bytes=CLASSIC_MAX_INPUT)
OUTPUT = MachineOption("output", commands=(), integer=False, runtime=True)  # API: where output bytes go

SUBLEQ = About("subleq", "SUBLEQ", 64, (".fleq",), (BITS,))
FLEQ = About("fleq", "FLEQ", 128, (".fleq",), (CELL,))
# the classic machine's default columns: ClassicConfig().columns (1 + memory + the two tapes)
CLASSIC = About("classic", "classic SUBLEQ", 4225, (".sq", ".asq", ".dec"),
                (BITS, MEMORY, INPUT, OUTPUT), fleq_language=False)

ABOUT: dict[str, About] = {about.name: about for about in (SUBLEQ, FLEQ, CLASSIC)}
