"""A third machine, registered only through the registry (tests/test_machines.py): the SUBLEQ
machine under the name ``echo``, whose programs are files ending in ``.echo`` and whose runs
report every pass to an observer given as a run option. It proves that nothing outside a machine's
package needs to know it: no branch elsewhere names ``echo``."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from fleqc.machines import language as fleq_language
from fleqc.machines.subleq.config import SubleqConfig
from fleqc.machines.base import MachineOption, Options
from fleqc.machines.subleq import SubleqMachine


@dataclasses.dataclass(frozen=True)
class EchoConfig(SubleqConfig):
    kind: str = "echo"


class EchoMachine(SubleqMachine):
    name = "echo"
    title = "ECHO"
    config_class = EchoConfig
    suffixes = (".echo",)
    options = (MachineOption("passes", "a list that receives (step, pc) after every pass", commands=(), integer=False),)
    language = None  # its files are FLEQ-language SUBLEQ programs under another suffix, not a dialect

    def compile(self, text: str, path: str, options: Options, language: Any = None) -> Any:
        # no dialect of its own (language None): its files are in the FLEQ language, SUBLEQ's dialect
        program = super().compile(text, path, options, language or fleq_language())
        return dataclasses.replace(program, machine=self.name)

    def config_for(self, program: Any, columns: Optional[int], options: Options) -> EchoConfig:
        return EchoConfig(super().config_for(program, columns, options).columns, program.bits)

    def decode(self, card: Any) -> Any:
        return dataclasses.replace(super().decode(card), machine=self.name)

    def run_reference(self, program: Any, max_steps: int, pc: int, options: Options) -> Any:
        return super().run_reference(dataclasses.replace(program, machine="subleq"), max_steps, pc, options)

    def reference_stepper(self, program: Any, pc: int, options: Options) -> Any:
        return super().reference_stepper(dataclasses.replace(program, machine="subleq"), pc, options)

    def observer(self, card: Any, options: Options):
        passes = options.get("passes")
        return None if passes is None else (lambda step, X: passes.append((step, card.read_pc(X))))


MACHINE = EchoMachine()
