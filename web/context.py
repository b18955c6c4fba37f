"""The casetrail the app was built with, for the views of every blueprint."""

from __future__ import annotations

from flask import current_app

from casetrail.bootstrap import Casetrail

EXTENSION = "casetrail"


def casetrail() -> Casetrail:
    ct: Casetrail = current_app.extensions[EXTENSION]
    return ct
