"""The front end of the FLEQ language: assembly text -> parse tree -> AST -> LinkedProgram.

``text_to_ast`` parses one file into typed syntax (:mod:`fleqc.frontend.syntax`); ``ast_to_program``
expands includes and links the whole program. Every mistake in the input is raised as a
:class:`fleqc.errors.FleqError` with a code and a source location; no other exception escapes.

The front end is given the machines a program may name (a :class:`fleqc.frontend.dialect.Language`)
and never looks them up itself: ``fleqc.machines.compile_file`` and ``compile_source`` pass the
registry's.
"""
