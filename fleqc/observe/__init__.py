"""Seeing the machine: traces, disassembly, pictures of X and attention, run reports, a debugger.

Everything here reads the machine from the outside. On the transformer backend the state is
decoded from X after each pass (through the executor's ``on_step`` callback and the card's own
decoders); the executor is never changed or asked for anything but its public functions.

- :mod:`.machine`: step a program on either backend, one instruction at a time or many.
- :mod:`.trace`: one event per executed instruction (pc, source line, values read and written).
- :mod:`.disasm`: the program read back out of a card, as assembly that reassembles to it.
- :mod:`.progress`: a progress bar on stderr for long runs in a terminal.
- :mod:`.show`: heatmaps of X and attention maps (matplotlib, the ``plot`` extra).
- :mod:`.report`: one self-contained HTML page of a run.
- :mod:`.debug`: a terminal step debugger (textual).
"""
