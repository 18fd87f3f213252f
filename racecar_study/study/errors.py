"""Launch errors: bad flags or cluster facts, found before anything is created.

A SpecError subclass, so the command line reports it as one line with exit code 2 (the study wing
does not import the cli wing).
"""

from racecar_study.study.spec import SpecError


class LaunchError(SpecError):
    pass
