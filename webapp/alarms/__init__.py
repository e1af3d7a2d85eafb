"""Alarms (DESIGN.md §14, ANSI/ISA-18.2): limits, their evaluation, the occurrence lifecycle."""
