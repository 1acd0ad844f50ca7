"""A long-running SUBLEQ program for lockstep runs of 10^5..10^6 steps."""

from __future__ import annotations


def long_program(iterations: int) -> str:
    """Mixes two cells with wrapping subtractions; both branches of the sign test are taken.

    About 4.5 steps per iteration; the loop counter runs from -iterations up to 1 (24-bit cells).
    """
    return f"""
.bits 24
.data
x:      .word 1234567
y:      .word -3210
t:      .word 0
count:  .word {-iterations}
m1:     .word -1
.text
loop:   subleq y, x, neg          ; x -= y; x <= 0 goes to neg
        subleq x, y               ; y -= x
        jmp next
neg:    subleq t, t
        subleq x, t               ; t = -x
        subleq t, y               ; y += x
next:   subleq m1, count, loop    ; count += 1; loop while count <= 0
        halt
"""
