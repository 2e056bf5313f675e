"""Config problems: every one is reported as `FILE:LINE:COL: message` (or `FILE: message`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        # One line per problem, whatever a quoted value holds.
        message = self.message.replace("\r", "\\r").replace("\n", "\\n")
        if self.line is None:
            return f"{self.file}: {message}"
        return f"{self.file}:{self.line}:{self.column or 1}: {message}"


class ConfigError(Exception):
    """One or more problems with a config file (or with applying it). The only error the loader raises."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
