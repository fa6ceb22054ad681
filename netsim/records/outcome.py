"""The record schema's version and the outcome vocabulary of a checked session."""

from typing import Final, Literal

# 2: outcome (passed/failed/unchecked), experiment, schema_version. 1: the records before (no version key).
SCHEMA_VERSION: Final = 2
Outcome = Literal["passed", "failed", "unchecked"]
OUTCOMES: Final = ("passed", "failed", "unchecked")
